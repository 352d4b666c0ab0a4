import { Dispatcher } from "../dispatcher/dispatcher.js";
import type { RequestMeta, UnaryInboundMiddleware, UnaryRequest, UnaryResponse } from "../dispatcher/types.js";

const encoder = new TextEncoder();

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

/** A request with a JSON body (`{}` when none is given). Test-only. */
export function makeRequest(meta: Partial<RequestMeta> = {}, body: unknown = {}): UnaryRequest {
  return { meta: makeMeta(meta), body: encoder.encode(JSON.stringify(body)) };
}

/** Decodes a JSON response body. Test-only. */
export function responseJson(response: UnaryResponse): unknown {
  return JSON.parse(new TextDecoder().decode(response.body));
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
