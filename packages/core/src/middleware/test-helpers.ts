import { Dispatcher, jsonProcedure } from "../dispatcher/dispatcher.js";
import type { RequestMeta, UnaryInboundMiddleware, UnaryRequest, UnaryResponse } from "../dispatcher/types.js";

/** Builds a request meta for tests; `service` is `test-svc`, transport `http`, signal never aborts. Test-only. */
export function makeMeta(overrides: Partial<RequestMeta> = {}): RequestMeta {
  return {
    service: "test-svc",
    procedure: "resourcelease::stats",
    transport: "http",
    headers: {},
    signal: new AbortController().signal,
    ...overrides,
  };
}

/** A request whose message is `message` (`{}` when none is given). Test-only. */
export function makeRequest(meta: Partial<RequestMeta> = {}, message: unknown = {}): UnaryRequest {
  return { meta: makeMeta(meta), message };
}

/** The response message. Test-only. */
export function responseJson(response: UnaryResponse): unknown {
  return response.message;
}

/**
 * Registers a JSON procedure whose handler sees the whole call (its meta and message) and answers a message.
 * Test-only.
 */
export function registerRaw(
  dispatcher: Dispatcher,
  name: string,
  handler: (request: UnaryRequest) => Promise<UnaryResponse>,
): void {
  dispatcher.register({
    name,
    definition: jsonProcedure(name),
    handler: async (message, meta) => (await handler({ meta, message })).message,
  });
}

/**
 * A dispatcher with `middleware` and one JSON procedure per name that records the meta it saw and answers
 * `{ principal, deadline }`. Test-only.
 */
export function recordingDispatcher(
  middleware: readonly UnaryInboundMiddleware[],
  procedures: readonly string[] = ["resourcelease::stats"],
): { dispatcher: Dispatcher; seen: RequestMeta[] } {
  const seen: RequestMeta[] = [];
  const dispatcher = new Dispatcher({ service: "test-svc", inboundMiddleware: middleware });
  for (const name of procedures) {
    dispatcher.registerJson(name, async (_body, meta) => {
      seen.push(meta);
      return { principal: meta.principal, deadline: meta.deadline };
    });
  }
  return { dispatcher, seen };
}

/** A promise with its resolve/reject exposed. Test-only. */
export function deferred<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (error: unknown) => void } {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}
