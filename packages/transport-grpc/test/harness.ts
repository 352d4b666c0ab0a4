import { decodeJsonBody, encodeJsonBody, type RequestMeta, type UnaryOutbound } from "@omnirelay/core";

/** Async resources a test opened; closed in reverse order by `closeAll`. */
export class Cleanup {
  private readonly items: Array<() => Promise<unknown>> = [];

  add<T extends { close(): Promise<unknown> }>(resource: T): T {
    this.items.push(() => resource.close());
    return resource;
  }

  async closeAll(): Promise<void> {
    for (const close of this.items.splice(0).reverse()) await close();
  }
}

/** Extra request metadata for {@link callJson}. */
export type CallExtras = Partial<Omit<RequestMeta, "procedure" | "signal" | "headers">> & {
  signal?: AbortSignal;
  headers?: Record<string, string>;
};

/** Sends a JSON body through an outbound as a dispatcher would, and parses the JSON answer. */
export async function callJson(
  outbound: UnaryOutbound,
  procedure: string,
  body: unknown,
  extras: CallExtras = {},
): Promise<{ json: Record<string, unknown>; headers: Readonly<Record<string, string>> | undefined }> {
  const { signal, headers, ...rest } = extras;
  const meta: RequestMeta = {
    service: "caller",
    transport: "in-process",
    ...rest,
    procedure,
    headers: headers ?? {},
    signal: signal ?? new AbortController().signal,
  };
  const response = await outbound.call({ meta, body: encodeJsonBody(body) });
  return { json: decodeJsonBody(response.body), headers: response.headers };
}

/** The rejection of a promise (fails the test when it resolves). */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject");
}

/** A promise with its resolve function, for handlers that wait on the test. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (value: T) => void } {
  let resolve!: (value: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
