import { type Attributes, type Meter, metrics } from "@opentelemetry/api";
import { type Logger, silentLogger } from "../contracts/health.js";
import type {
  TransportKind,
  UnaryHandler,
  UnaryInboundMiddleware,
  UnaryRequest,
  UnaryResponse,
} from "../dispatcher/types.js";
import { ErrorCodes } from "../errors/codes.js";
import { isOmniRelayError, OmniRelayError } from "../errors/omnirelay-error.js";
import type { OmniRelayStatus } from "../errors/status.js";
import { type Clock, systemClock } from "../util/clock.js";
import { integerOption } from "../wire/options.js";
import { rpcInstrumentationName } from "./tracing.js";

/** One finished call, as reported to an {@link RpcMetricsRecorder}. Every field has a bounded set of values. */
export interface RpcCallMetric {
  readonly service: string;
  /** The registered procedure name, trimmed and lower-cased (never a raw, unbounded string). */
  readonly procedure: string;
  readonly transport: TransportKind;
  /** `ok`, or the failure's status. */
  readonly status: OmniRelayStatus;
  /** The failure's stable error code; absent on success. */
  readonly code?: string;
  readonly durationMs: number;
}

/** Receives one record per call; diagnostics backs it with prom-client, {@link createOtelRpcMetricsRecorder} with OpenTelemetry. */
export interface RpcMetricsRecorder {
  record(metric: RpcCallMetric): void;
}

/** Options of {@link RpcMetricsMiddleware}. */
export interface RpcMetricsMiddlewareOptions {
  /** Where the measurements go. */
  readonly recorder: RpcMetricsRecorder;
  /** Time source for durations. @defaultValue `systemClock` */
  readonly clock?: Clock;
  /** Receives recorder failures. @defaultValue `silentLogger` */
  readonly logger?: Logger;
}

/** Measures every call (count, outcome, duration) and hands it to a recorder; a failing recorder never fails the call. */
export class RpcMetricsMiddleware implements UnaryInboundMiddleware {
  private readonly recorder: RpcMetricsRecorder;
  private readonly clock: Clock;
  private readonly logger: Logger;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option: recorder`) without a recorder. */
  constructor(options: RpcMetricsMiddlewareOptions) {
    if (typeof options?.recorder?.record !== "function") {
      throw OmniRelayError.invalidOption("recorder", "Option 'recorder' must have a record(metric) method.");
    }
    this.recorder = options.recorder;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
  }

  /** Runs `next` and records its outcome; rethrows the call's own error unchanged. */
  async handle(request: UnaryRequest, next: UnaryHandler): Promise<UnaryResponse> {
    const started = this.clock.now();
    try {
      const response = await next(request);
      this.record(request, started, { status: "ok" });
      return response;
    } catch (error) {
      const reason = !isOmniRelayError(error) && request.meta.signal.aborted ? request.meta.signal.reason : error;
      if (isOmniRelayError(reason)) this.record(request, started, { status: reason.status, code: reason.code });
      else if (request.meta.signal.aborted) {
        this.record(request, started, { status: "cancelled", code: ErrorCodes.rpc.cancelled });
      } else this.record(request, started, { status: "internal", code: ErrorCodes.rpc.internal });
      throw error;
    }
  }

  private record(
    request: UnaryRequest,
    started: number,
    { status, code }: { readonly status: OmniRelayStatus; readonly code?: string },
  ): void {
    const meta = request.meta;
    const metric: RpcCallMetric = {
      service: meta.service,
      procedure: meta.procedure.trim().toLowerCase(),
      transport: meta.transport,
      status,
      ...(code === undefined ? {} : { code }),
      durationMs: Math.max(0, this.clock.now() - started),
    };
    try {
      this.recorder.record(metric);
    } catch (err) {
      this.logger.warn({ err, procedure: metric.procedure }, "The RPC metrics recorder failed.");
    }
  }
}

/** Options of {@link createOtelRpcMetricsRecorder}. */
export interface OtelRpcMetricsRecorderOptions {
  /** Meter that owns the instruments. @defaultValue `metrics.getMeter('OmniRelay.Rpc')` */
  readonly meter?: Meter;
  /** Distinct procedure names kept as labels; later ones are recorded as `_other`. @defaultValue `1000` */
  readonly maxProcedures?: number;
}

/**
 * A recorder that writes the counter `omnirelay.rpc.requests` and the histogram `omnirelay.rpc.request.duration`
 * (ms), labelled `rpc.service`, `rpc.method`, `rpc.transport`, `rpc.status` and, on failure, `rpc.error_code`.
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option: maxProcedures`) when
 * `maxProcedures` is not an integer >= 1.
 */
export function createOtelRpcMetricsRecorder(options: OtelRpcMetricsRecorderOptions = {}): RpcMetricsRecorder {
  const maxProcedures = integerOption("maxProcedures", options.maxProcedures, { min: 1, fallback: 1000 });
  const meter = options.meter ?? metrics.getMeter(rpcInstrumentationName);
  const requests = meter.createCounter("omnirelay.rpc.requests", {
    description: "Inbound RPC calls handled, by outcome.",
    unit: "{request}",
  });
  const duration = meter.createHistogram("omnirelay.rpc.request.duration", {
    description: "Time to handle an inbound RPC call.",
    unit: "ms",
  });
  const procedures = new Set<string>();
  const label = (procedure: string): string => {
    if (procedures.has(procedure)) return procedure;
    if (procedures.size >= maxProcedures) return "_other";
    procedures.add(procedure);
    return procedure;
  };
  return {
    record(metric) {
      const attributes: Attributes = {
        "rpc.service": metric.service,
        "rpc.method": label(metric.procedure),
        "rpc.transport": metric.transport,
        "rpc.status": metric.status,
      };
      if (metric.code !== undefined) attributes["rpc.error_code"] = metric.code;
      requests.add(1, attributes);
      duration.record(metric.durationMs, attributes);
    },
  };
}
