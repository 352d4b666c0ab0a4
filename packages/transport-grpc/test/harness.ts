import { Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import {
  Dispatcher,
  type DispatcherOptions,
  jsonProcedure,
  type OmniRelayError,
  type ProcedureDefinition,
  type RequestMeta,
  ResourceLeaseClient,
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseDispatcherComponentOptions,
  type ResourceLeaseGrant,
  ResourceLeaseProcedures,
  type ResourceLeaseQueueOptions,
  type UnaryInboundMiddleware,
  type UnaryOutbound,
} from "@omnirelay/core";
import type { FakeClock } from "@omnirelay/core/testing";
import { requestSite, type SessionChannel, type SessionServerFrame } from "@omnirelay/core/wire";
import { GrpcInbound, type GrpcInboundOptions, GrpcOutbound, ResourceLeaseServiceClient } from "../src/index.js";

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

/** The request body and extra request metadata of a {@link callJson} call. */
export type CallExtras = Partial<Omit<RequestMeta, "procedure" | "signal" | "headers">> & {
  /** The request in docs/protocol.md's JSON shape. @defaultValue `{}` */
  body?: unknown;
  signal?: AbortSignal;
  headers?: Record<string, string>;
};

/**
 * Sends a call given as its JSON body through an outbound: the body is read with the procedure's definition (core's
 * resourcelease procedures by verb, else a plain JSON procedure), and the answer written back as JSON, so tests can
 * state requests and answers in docs/protocol.md's shapes.
 */
export async function callJson(
  outbound: UnaryOutbound,
  procedure: string,
  extras: CallExtras = {},
): Promise<{ json: Record<string, unknown>; headers: Readonly<Record<string, string>> | undefined }> {
  const { body = {}, signal, headers, ...rest } = extras;
  const meta: RequestMeta = {
    service: "caller",
    transport: "in-process",
    ...rest,
    procedure,
    headers: headers ?? {},
    signal: signal ?? new AbortController().signal,
  };
  const verb = procedure.slice(procedure.lastIndexOf("::") + 2);
  const definition = (ResourceLeaseProcedures as Record<string, ProcedureDefinition>)[verb] ?? jsonProcedure(verb);
  const message = definition.request.read(body, requestSite());
  const response = await outbound.call(definition, { meta, message });
  return {
    json: definition.response.write(response.message, "json") as Record<string, unknown>,
    headers: response.headers,
  };
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

/** A real ResourceLeaseDispatcherComponent behind a GrpcInbound (two pending items unless `empty`), and a client. */
export async function componentStack(
  cleanup: Cleanup,
  options: {
    middleware?: UnaryInboundMiddleware[];
    inbound?: Partial<GrpcInboundOptions>;
    /** More options of the dispatcher (its clock, its deadline rules). */
    dispatcher?: Omit<DispatcherOptions, "service" | "inboundMiddleware">;
    queueOptions?: ResourceLeaseQueueOptions;
    empty?: boolean;
  } = {},
) {
  const dispatcher = new Dispatcher({
    service: "limits",
    inboundMiddleware: options.middleware ?? [],
    ...options.dispatcher,
  });
  const component = cleanup.add(
    new ResourceLeaseDispatcherComponent(
      dispatcher,
      options.queueOptions ? { queueOptions: options.queueOptions } : {},
    ),
  );
  const item = (id: string) => ({ resourceType: "table", resourceId: id, partitionKey: "p", payloadEncoding: "json" });
  if (!options.empty) await component.queue.enqueueMany([item("a"), item("b")]);
  const inbound = cleanup.add(new GrpcInbound({ dispatcher, ...options.inbound }));
  const { port } = await inbound.start();
  const client = new ResourceLeaseServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  cleanup.add({ close: async () => client.close() });
  return { dispatcher, component, port, client };
}

/**
 * Calls `rpc` with `request` (`{}` when absent), extra `metadata` and a 30 s gRPC deadline; resolves with the answer
 * or the error.
 */
export function rawRpc(
  client: ResourceLeaseServiceClient,
  rpc: "drain" | "stats" | "lease",
  call: { request?: object; metadata?: Readonly<Record<string, string>> } = {},
): Promise<{ error?: ServiceError; value?: Record<string, unknown> }> {
  const { request = {}, metadata: extra = {} } = call;
  const metadata = new Metadata();
  for (const [k, v] of Object.entries(extra)) metadata.set(k, v);
  return new Promise((resolve) => {
    const method = client[rpc].bind(client) as (
      req: object,
      md: Metadata,
      options: { deadline: number },
      cb: (e: ServiceError | null, v?: unknown) => void,
    ) => void;
    method(request, metadata, { deadline: Date.now() + 30_000 }, (error, value) =>
      resolve(error ? { error } : { value: value as Record<string, unknown> }),
    );
  });
}

/** An answer to a call made with request bytes written by hand: the error, or the response's bytes. */
export type RawAnswer = { error?: ServiceError; value?: Buffer };

/**
 * Calls of `ResourceLeaseService` methods with request bytes written by hand (so a test can send what no well-behaved
 * client would), over a client to `127.0.0.1:port` that `cleanup` closes (returned too); a 30 s gRPC deadline each.
 */
export function rawBytesCaller(
  cleanup: Cleanup,
  port: number,
): { call: (method: string, bytes: Uint8Array) => Promise<RawAnswer>; client: Client } {
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  cleanup.add({ close: async () => client.close() });
  const identity = (b: Buffer) => b;
  const call = (method: string, bytes: Uint8Array): Promise<RawAnswer> =>
    new Promise((resolve) =>
      client.makeUnaryRequest(
        `/omnirelay.resourcelease.v1.ResourceLeaseService/${method}`,
        identity,
        identity,
        Buffer.from(bytes),
        new Metadata(),
        { deadline: Date.now() + 30_000 },
        (error, value) => resolve(error ? { error } : { value: value as Buffer }),
      ),
    );
  return { call, client };
}

/**
 * A real queue behind a GrpcInbound and a `ResourceLeaseClient` over a GrpcOutbound to it: what the client-level tests
 * (cancel, schedules, history, lock-delay, ejection) share. `clock` goes to the dispatcher (and so to its queue).
 */
export async function clientStack(
  cleanup: Cleanup,
  options: { clock?: FakeClock; component?: ResourceLeaseDispatcherComponentOptions } = {},
) {
  const dispatcher = new Dispatcher({ service: "mesh", ...(options.clock ? { clock: options.clock } : {}) });
  const component = cleanup.add(new ResourceLeaseDispatcherComponent(dispatcher, options.component ?? {}));
  const inbound = cleanup.add(new GrpcInbound({ dispatcher }));
  const { port } = await inbound.start();
  const outbound = cleanup.add(new GrpcOutbound({ address: `127.0.0.1:${port}` }));
  const client = (caller?: string) => new ResourceLeaseClient({ outbound, ...(caller ? { caller } : {}) });
  return { dispatcher, component, queue: component.queue, port, outbound, client };
}

/** A session through the real GrpcOutbound, recording what comes back; its close goes on `cleanups`. */
export function recordedSession(outbound: GrpcOutbound, caller: string, cleanups: Array<() => unknown>) {
  const frames: SessionServerFrame[] = [];
  let opened = false;
  let closed: OmniRelayError | undefined;
  const channel: SessionChannel = outbound.openSession({
    namespace: "resourcelease",
    caller,
    onOpen: () => {
      opened = true;
    },
    onFrame: (frame) => frames.push(frame),
    onClose: (error) => {
      closed = error;
    },
  });
  cleanups.push(async () => channel.close());
  const until = async (ok: () => boolean, ms = 3000) => {
    const end = Date.now() + ms;
    while (!ok()) {
      if (Date.now() > end) throw new Error(`timed out; frames ${JSON.stringify(frames)}, closed ${closed?.code}`);
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  return {
    channel,
    frames,
    until,
    opened: () => opened,
    closed: () => closed,
    grants: (): ResourceLeaseGrant[] => frames.flatMap((f) => [...(f.grants ?? [])]),
    result: (id: number) => frames.flatMap((f) => [...(f.results ?? [])]).find((r) => r.id === id),
  };
}
