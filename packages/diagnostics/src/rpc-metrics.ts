import type { Dispatcher } from "@omnirelay/core";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import type { RpcCallMetric, RpcMetricsRecorder } from "@omnirelay/core/middleware";
import { integerOption } from "@omnirelay/core/wire";
import { Counter, Histogram, type Registry } from "prom-client";

/** Label value used when a value is not one of the bounded, known ones. */
export const OTHER_LABEL = "_other";

/** Default histogram buckets for durations and lags, in ms. */
export const defaultDurationBucketsMs: readonly number[] = [
  1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 30_000, 60_000,
];

/** Options of {@link PrometheusRpcMetricsRecorder}. */
export interface PrometheusRpcMetricsRecorderOptions {
  /** Registry that receives `omnirelay_http_requests_total` and `omnirelay_http_request_duration`. */
  readonly registry: Registry;
  /**
   * Only procedures this dispatcher has registered become label values; anything else is `_other`.
   * @defaultValue `undefined` (the first `maxProcedures` distinct names are kept)
   */
  readonly dispatcher?: Pick<Dispatcher, "lookup">;
  /** Distinct procedure label values kept; later ones are `_other`. @defaultValue 500 */
  readonly maxProcedures?: number;
  /** Buckets of the duration histogram, ms. @defaultValue {@link defaultDurationBucketsMs} */
  readonly bucketsMs?: readonly number[];
}

const FENCED = ErrorCodes.resourceLease.leaseFenced;

/**
 * An {@link RpcMetricsRecorder} backed by prom-client: feed it to core's `RpcMetricsMiddleware` to get the counter
 * `omnirelay_http_requests_total{procedure,transport,status}` and the histogram
 * `omnirelay_http_request_duration{procedure,transport}` (ms), and
 * `omnirelay_resourcelease_fenced_calls_total{procedure}`: calls refused because their lease token no longer holds the
 * lease (`resourcelease.lease.fenced`: a late heartbeat, complete or fail of a zombie worker). Label sets are bounded: unknown procedures and
 * names beyond `maxProcedures` are recorded as `_other`.
 */
export class PrometheusRpcMetricsRecorder implements RpcMetricsRecorder {
  private readonly requests: Counter<"procedure" | "transport" | "status">;
  private readonly duration: Histogram<"procedure" | "transport">;
  private readonly fenced: Counter<"procedure">;
  private readonly dispatcher: Pick<Dispatcher, "lookup"> | undefined;
  private readonly maxProcedures: number;
  private readonly procedures = new Set<string>();

  /**
   * Registers the three instruments in `registry`.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) without a registry,
   * or for a bad `maxProcedures`; prom-client's own Error when the registry already holds these metric names.
   */
  constructor(options: PrometheusRpcMetricsRecorderOptions) {
    if (typeof options?.registry?.registerMetric !== "function") {
      throw OmniRelayError.invalidOption("registry", "Option 'registry' must be a prom-client Registry.");
    }
    this.dispatcher = options.dispatcher;
    this.maxProcedures = integerOption("maxProcedures", options.maxProcedures, { min: 1, fallback: 500 });
    this.requests = new Counter({
      name: "omnirelay_http_requests_total",
      help: "Inbound RPC calls handled, by procedure, transport and outcome status.",
      labelNames: ["procedure", "transport", "status"],
      registers: [options.registry],
    });
    this.duration = new Histogram({
      name: "omnirelay_http_request_duration",
      help: "Time to handle an inbound RPC call, in milliseconds.",
      labelNames: ["procedure", "transport"],
      buckets: [...(options.bucketsMs ?? defaultDurationBucketsMs)],
      registers: [options.registry],
    });
    this.fenced = new Counter({
      name: "omnirelay_resourcelease_fenced_calls_total",
      help: "Calls refused with resourcelease.lease.fenced (a token whose lease ended), by procedure.",
      labelNames: ["procedure"],
      registers: [options.registry],
    });
  }

  /** Counts the call and observes its duration. Never throws for a well-formed metric. */
  record(metric: RpcCallMetric): void {
    const procedure = this.procedureLabel(metric.procedure);
    this.requests.inc({ procedure, transport: metric.transport, status: metric.status });
    this.duration.observe({ procedure, transport: metric.transport }, Math.max(0, metric.durationMs));
    if (metric.code === FENCED) this.fenced.inc({ procedure });
  }

  private procedureLabel(raw: string): string {
    const name = raw.trim().toLowerCase();
    if (this.procedures.has(name)) return name;
    if (this.dispatcher !== undefined && this.dispatcher.lookup(name) === undefined) return OTHER_LABEL;
    if (this.procedures.size >= this.maxProcedures) return OTHER_LABEL;
    this.procedures.add(name);
    return name;
  }
}

/** @internal */
export function checkBuckets(option: string, buckets: readonly number[] | undefined): void {
  if (buckets === undefined) return;
  if (!Array.isArray(buckets) || buckets.length === 0 || buckets.some((b) => !Number.isFinite(b) || b <= 0)) {
    throw OmniRelayError.invalidOption(option, `Option '${option}' must be a non-empty array of positive numbers.`);
  }
}
