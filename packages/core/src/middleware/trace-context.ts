import { createTraceState, isSpanContextValid, type SpanContext } from "@opentelemetry/api";

const version00 = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const futureVersion = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-|$)/;
const maxTraceStateLength = 512;

/**
 * Parses a W3C `traceparent` (and optional `tracestate`) into a remote span context. Version `00` must match
 * exactly; a later version (not `ff`) is read by its first four fields, as the W3C spec asks. Upper-case hex,
 * all-zero ids and anything malformed give `undefined` (the caller then starts a new trace).
 */
export function parseTraceparent(traceparent: string | undefined, tracestate?: string): SpanContext | undefined {
  if (traceparent === undefined) return undefined;
  const text = traceparent.trim();
  let fields: (string | undefined)[];
  if (text.startsWith("00-")) {
    const match = version00.exec(text);
    if (!match) return undefined;
    fields = [match[1], match[2], match[3]];
  } else {
    const match = futureVersion.exec(text);
    if (!match || match[1] === "ff") return undefined;
    fields = [match[2], match[3], match[4]];
  }
  const [traceId, spanId, flags] = fields;
  if (traceId === undefined || spanId === undefined || flags === undefined) return undefined;
  const context: SpanContext = {
    traceId,
    spanId,
    traceFlags: Number.parseInt(flags, 16),
    isRemote: true,
  };
  if (!isSpanContextValid(context)) return undefined;
  const state = tracestate?.trim();
  if (state && state.length <= maxTraceStateLength) return { ...context, traceState: createTraceState(state) };
  return context;
}

/** Formats a span context as a version-00 `traceparent`; `undefined` for an invalid (non-recording no-op) context. */
export function formatTraceparent(context: SpanContext): string | undefined {
  if (!isSpanContextValid(context)) return undefined;
  const flags = (context.traceFlags & 0xff).toString(16).padStart(2, "0");
  return `00-${context.traceId}-${context.spanId}-${flags}`;
}
