import {
  type Attributes,
  context,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import type { UnaryHandler, UnaryInboundMiddleware, UnaryRequest, UnaryResponse } from "../dispatcher/types.js";
import { ErrorCodes } from "../errors/codes.js";
import { isOmniRelayError } from "../errors/omnirelay-error.js";
import { splitProcedure } from "./procedure-glob.js";
import { formatTraceparent, parseTraceparent } from "./trace-context.js";

/** Options of {@link RpcTracingMiddleware}. */
export interface RpcTracingMiddlewareOptions {
  /** Tracer that creates the server spans. @defaultValue `trace.getTracer('OmniRelay.Rpc')` */
  readonly tracer?: Tracer;
}

/** Name of the tracer (and meter) OmniRelay's RPC instrumentation uses; dashboards depend on it. */
export const rpcInstrumentationName = "OmniRelay.Rpc";

/**
 * Wraps each call in a SERVER span named after its procedure, continuing the caller's W3C trace when the request
 * carries a valid `traceparent`, and returns the span's own `traceparent` as a response header. Attributes are the
 * bounded RPC facts only (service, method, transport, peer, shard key, principal, operation); headers, bodies and
 * tokens never go on the span.
 */
export class RpcTracingMiddleware implements UnaryInboundMiddleware {
  private readonly tracer: Tracer;

  /** Creates the middleware. */
  constructor(options: RpcTracingMiddlewareOptions = {}) {
    this.tracer = options.tracer ?? trace.getTracer(rpcInstrumentationName);
  }

  /** Runs `next` inside the span; the span records the error code of a failed call and is always ended. */
  async handle(request: UnaryRequest, next: UnaryHandler): Promise<UnaryResponse> {
    const meta = request.meta;
    const remote = parseTraceparent(meta.headers.traceparent, meta.headers.tracestate);
    const parent = remote === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, remote);
    const attributes: Attributes = {
      "rpc.system": "omnirelay",
      "rpc.service": meta.service,
      "rpc.method": meta.procedure,
      "rpc.transport": meta.transport,
    };
    if (meta.caller) attributes["rpc.peer"] = meta.caller;
    if (meta.shardKey) attributes["rpc.shard_key"] = meta.shardKey;
    if (meta.principal) attributes["rpc.principal"] = meta.principal;
    const operation = splitProcedure(meta.procedure)?.verb;
    if (operation) attributes["resourcelease.operation"] = operation;

    const span = this.tracer.startSpan(meta.procedure, { kind: SpanKind.SERVER, attributes }, parent);
    try {
      const response = await context.with(trace.setSpan(parent, span), () => next(request));
      span.setStatus({ code: SpanStatusCode.OK });
      const traceparent = formatTraceparent(span.spanContext());
      return traceparent === undefined ? response : { ...response, headers: { ...response.headers, traceparent } };
    } catch (error) {
      // Only an OmniRelayError's message is meant for callers; anything else may carry internals.
      const known = isOmniRelayError(error);
      span.setAttribute("rpc.error_code", known ? error.code : ErrorCodes.rpc.internal);
      span.setAttribute("rpc.error_status", known ? error.status : "internal");
      span.setStatus({
        code: SpanStatusCode.ERROR,
        message: known ? error.message : "The procedure failed unexpectedly.",
      });
      throw error;
    } finally {
      span.end();
    }
  }
}
