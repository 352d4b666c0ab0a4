import {
  Dispatcher,
  type DispatcherOptions,
  HttpInbound,
  type HttpInboundOptions,
  HttpOutbound,
  ResourceLeaseClient,
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseDispatcherComponentOptions,
  type UnaryInboundMiddleware,
} from "../src/index.js";

/** A dispatcher with resourcelease components served over real HTTP on 127.0.0.1. */
export async function startServer(
  options: {
    components?: ResourceLeaseDispatcherComponentOptions[];
    middleware?: UnaryInboundMiddleware[];
    maxBodyBytes?: number;
    /** More options of the inbound. */
    inbound?: Omit<HttpInboundOptions, "dispatcher">;
    /** More options of the dispatcher (its clock, its deadline rules). */
    dispatcher?: Omit<DispatcherOptions, "service" | "inboundMiddleware">;
  } = {},
) {
  const dispatcher = new Dispatcher({
    service: "test-svc",
    inboundMiddleware: options.middleware ?? [],
    ...options.dispatcher,
  });
  const components = (options.components ?? [{}]).map((c) => new ResourceLeaseDispatcherComponent(dispatcher, c));
  const inbound = new HttpInbound({
    dispatcher,
    ...(options.maxBodyBytes !== undefined ? { maxBodyBytes: options.maxBodyBytes } : {}),
    ...options.inbound,
  });
  await dispatcher.start();
  const url = inbound.url;
  const clients: ResourceLeaseClient[] = [];
  return {
    dispatcher,
    components,
    inbound,
    url,
    queue: components[0]!.queue,
    client(namespace?: string, caller = "test-client") {
      const c = new ResourceLeaseClient({
        outbound: new HttpOutbound({ url }),
        caller,
        ...(namespace ? { namespace } : {}),
      });
      clients.push(c);
      return c;
    },
    /** Raw wire call: the contract other programs rely on. */
    async post(
      procedure: string | undefined,
      body: unknown,
      headers: Record<string, string> = {},
    ): Promise<{ status: number; headers: Headers; json: any }> {
      const res = await fetch(url, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(procedure ? { "rpc-procedure": procedure } : {}),
          ...headers,
        },
        body: typeof body === "string" ? body : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, json: text ? JSON.parse(text) : undefined };
    },
    /** Closes the clients, then the dispatcher: its inbound drains, then its components (queues) close. */
    async close() {
      await Promise.all(clients.map((c) => c.close()));
      await dispatcher.stop();
    },
  };
}

export const payload = (id: string, extra: Record<string, unknown> = {}) => ({
  resourceType: "table",
  resourceId: id,
  partitionKey: "p",
  payloadEncoding: "json",
  ...extra,
});
