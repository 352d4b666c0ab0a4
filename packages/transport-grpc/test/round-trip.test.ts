import { credentials, status as GrpcStatus, Metadata, type ServiceError } from "@grpc/grpc-js";
import {
  Dispatcher,
  isOmniRelayError,
  OmniRelayError,
  type ProcedureDefinition,
  type RequestMeta,
  ResourceLeaseProcedures,
  type ResourceLeaseQueueStats,
  ResourceLeaseVerbs,
  type UnaryInboundMiddleware,
} from "@omnirelay/core";
import { responseSite } from "@omnirelay/core/wire";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { GrpcInbound, GrpcOutbound, ResourceLeaseServiceClient } from "../src/index.js";
import { Cleanup, callJson, deferred, rejectionOf } from "./harness.js";

const payload = {
  resourceType: "table",
  resourceId: "orders",
  partitionKey: "p-1",
  payloadEncoding: "json",
  body: Buffer.from('{"id":1}').toString("base64"),
  attributes: { tenant: "acme" },
  requestId: "req-1",
};
const token = { sequenceId: 1, attempt: 1, leaseId: "lease-a", fencingToken: 1 };
const grant = {
  payload,
  sequenceId: 1,
  attempt: 1,
  enqueuedAt: "2026-01-01T00:00:00.000Z",
  ownershipToken: token,
  ownerPeerId: "worker-a",
  leaseExpiresAt: "2026-01-01T00:00:30.000Z",
};
const pending = {
  payload,
  sequenceId: 2,
  attempt: 3,
  enqueuedAt: "2026-01-01T00:00:00.000Z",
  lastError: { message: "x" },
};

const schedule = { id: "s1", cron: "0 * * * *", timezone: "UTC", payload, backfill: "all", backfillWindowMs: 6e4 };
const scheduleTimes = { upsertedAt: "2026-01-01T00:00:00.000Z", nextSlotAt: "2026-01-01T00:05:00.000Z" };

// [procedure, request body, response body]: each request must reach the handler unchanged and each response must
// reach the caller unchanged.
const cases: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
  ["resourcelease::enqueue", { payload }, { sequenceId: 1, stats: { pendingCount: 1, activeLeaseCount: 0 } }],
  [
    "resourcelease::enqueue",
    { payloads: [payload, { ...payload, requestId: "req-2" }] },
    { sequenceIds: [1, 2], duplicates: [true, false], stats: { pendingCount: 2, activeLeaseCount: 0 } },
  ],
  ["resourcelease::lease", { peerId: "worker-a", waitMs: 0 }, grant],
  ["resourcelease::lease", {}, {}],
  ["resourcelease::lease", { maxItems: 3 }, { items: [grant] }],
  [
    "resourcelease::heartbeat",
    { ownershipToken: token },
    { success: true, leaseExpiresAt: "2026-01-01T00:01:00.000Z", remainingMs: 30000 },
  ],
  ["resourcelease::complete", { ownershipToken: token }, { success: true }],
  [
    "resourcelease::complete",
    { ownershipTokens: [token, { ...token, fencingToken: 2 }] },
    {
      success: false,
      results: [{ success: true }, { success: false, code: "resourcelease.lease.fenced", message: "m" }],
    },
  ],
  [
    "resourcelease::fail",
    { ownershipToken: token, reason: "r", errorCode: "e", requeue: false, delayMs: 10, metadata: { k: "v" } },
    { success: true, outcome: "dead_lettered" },
  ],
  ["resourcelease::drain", { maxItems: 10 }, { items: [pending], remainingCount: 3 }],
  ["resourcelease::restore", { items: [pending, { payload, sequenceId: 9 }] }, { restoredCount: 2 }],
  [
    "resourcelease::deadletters",
    { limit: 5 },
    { items: [{ ...pending, deadLetteredAt: "2026-01-01T00:05:00.000Z", reason: "failed" }] },
  ],
  ["resourcelease::redrive", { sequenceIds: [] }, { redrivenCount: 0 }],
  ["resourcelease::redrive", {}, { redrivenCount: 4 }],
  [
    "resourcelease::stats",
    {},
    {
      pendingCount: 1,
      delayedCount: 0,
      activeLeaseCount: 2,
      deadLetterCount: 0,
      state: "running",
      lastEventSequence: 10,
      lastFencingToken: 3,
      capacity: 512,
    },
  ],
  ["resourcelease.billing::stats", {}, { pendingCount: 7, activeLeaseCount: 0 }],
  ["resourcelease::cancel", { sequenceId: 7 }, { sequenceId: 7, state: "active" }],
  ["resourcelease::cancel", { requestId: "req-1" }, { sequenceId: 3, state: "delayed" }],
  ["resourcelease::schedule.set", { schedule }, { schedule: { ...schedule, ...scheduleTimes } }],
  ["resourcelease::schedule.remove", { id: "s1" }, { removed: true }],
  ["resourcelease::schedule.list", {}, { schedules: [{ ...schedule, ...scheduleTimes }] }],
];

// What a procedure answers when a test set no answer for it.
const defaultAnswers: Record<string, Record<string, unknown>> = {
  enqueue: { sequenceId: 1, stats: { pendingCount: 0, activeLeaseCount: 0 } },
  lease: {},
  heartbeat: { success: true, leaseExpiresAt: "2026-01-01T00:00:00.000Z", remainingMs: 0 },
  complete: { success: true },
  fail: { success: true, outcome: "requeued" },
  drain: { items: [], remainingCount: 0 },
  restore: { restoredCount: 0 },
  deadletters: { items: [] },
  redrive: { redrivenCount: 0 },
  stats: { pendingCount: 0, activeLeaseCount: 0 },
  cancel: { sequenceId: 1, state: "pending" },
};

// The verbs a real component serves: one list, core's.
const verbs = ResourceLeaseVerbs;

describe("GrpcInbound + GrpcOutbound over 127.0.0.1", () => {
  const cleanup = new Cleanup();
  let dispatcher: Dispatcher;
  let inbound: GrpcInbound;
  let outbound: GrpcOutbound;
  let port: number;
  let received: Array<{ procedure: string; body: Record<string, unknown>; meta: RequestMeta }>;
  let answers: Map<string, unknown>;
  let seenByMiddleware: RequestMeta[];

  beforeEach(async () => {
    received = [];
    answers = new Map();
    seenByMiddleware = [];
    dispatcher = new Dispatcher({ service: "grpc-test" });
    dispatcher.use({
      handle: (request, next) => {
        seenByMiddleware.push(request.meta);
        return next(request);
      },
    });
    // The procedures a component serves, by their definitions: handlers see decoded domain messages. Requests and
    // answers are stated as their JSON (docs/protocol.md) and compared as that.
    for (const ns of ["resourcelease", "resourcelease.billing"]) {
      for (const verb of verbs) {
        const procedure = `${ns}::${verb}`;
        const definition = ResourceLeaseProcedures[verb] as ProcedureDefinition;
        dispatcher.register({
          name: procedure,
          definition,
          handler: async (message, meta) => {
            received.push({ procedure, body: definition.request.write(message, "json"), meta });
            return definition.response.read(answers.get(procedure) ?? defaultAnswers[verb], responseSite());
          },
        });
      }
    }
    inbound = cleanup.add(new GrpcInbound({ dispatcher }));
    ({ port } = await inbound.start());
    outbound = cleanup.add(new GrpcOutbound({ address: `127.0.0.1:${port}` }));
  });

  afterEach(() => cleanup.closeAll());

  it("carries every verb's request and response unchanged", async () => {
    for (const [procedure, request, response] of cases) {
      answers.set(procedure, response);
      const { json } = await callJson(outbound, procedure, { body: request });
      const last = received.at(-1)!;
      expect(last.procedure, procedure).toBe(procedure);
      expect(last.body, `${procedure} request`).toEqual(request);
      expect(json, `${procedure} response`).toEqual(response);
    }
    expect(received).toHaveLength(cases.length);
  });

  it("gives middleware and handlers the call's metadata: transport, caller, shard key, headers, peer", async () => {
    await callJson(outbound, "resourcelease.billing::stats", {
      caller: "billing-worker",
      shardKey: "tenant-42",
      headers: { traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "x-not-forwarded": "1" },
    });
    const meta = seenByMiddleware[0]!;
    expect(meta).toMatchObject({
      service: "grpc-test",
      procedure: "resourcelease.billing::stats",
      transport: "grpc",
      caller: "billing-worker",
      shardKey: "tenant-42",
      encoding: "protobuf",
      security: { clientCertificateVerified: false, remoteAddress: "127.0.0.1" },
    });
    expect(meta.headers).toMatchObject({
      "rpc-namespace": "resourcelease.billing",
      "rpc-caller": "billing-worker",
      "rpc-shard-key": "tenant-42",
      traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    });
    expect(meta.headers).not.toHaveProperty("x-not-forwarded");
    expect(meta.deadline).toBeGreaterThan(Date.now());
    expect(meta.signal.aborted).toBe(false);
    expect(received[0]!.meta.transport).toBe("grpc");
  });

  it("keeps an error's status, code, message and metadata (code survives in omnirelay-error-code)", async () => {
    const thrown = new OmniRelayError({
      status: "resource-exhausted",
      code: "resourcelease.backpressure",
      message: "Slow down — queue above high watermark.",
      metadata: { retryAfterMs: "250", pendingCount: "900" },
    });
    for (const procedure of ["errs::enqueue", "errs::stats"]) {
      dispatcher.registerJson(procedure, async () => {
        throw thrown;
      });
    }
    const error = await rejectionOf(callJson(outbound, "errs::enqueue", { body: { payload } }));
    expect(isOmniRelayError(error)).toBe(true);
    expect((error as OmniRelayError).toJSON()).toEqual(thrown.toJSON());

    // And on the raw wire: the gRPC code from the status table plus the trailers.
    const raw = await rawCall(port, "errs");
    expect(raw.code).toBe(GrpcStatus.RESOURCE_EXHAUSTED);
    expect(raw.metadata.get("omnirelay-status")).toEqual(["RESOURCE_EXHAUSTED"]);
    expect(raw.metadata.get("omnirelay-error-code")).toEqual(["resourcelease.backpressure"]);
    expect(raw.metadata.get("omnirelay-meta-retry_after_ms")).toEqual(["250"]);
  });

  it("hides unexpected handler failures behind internal omnirelay.internal", async () => {
    dispatcher.registerJson("errs::stats", async () => {
      throw new Error("secret connection string in here");
    });
    const error = (await rejectionOf(callJson(outbound, "errs::stats"))) as OmniRelayError;
    expect(error).toMatchObject({ status: "internal", code: "omnirelay.internal" });
    expect(error.message).not.toContain("secret");
  });

  it("an unknown namespace passes the dispatcher's UNIMPLEMENTED through with its code", async () => {
    const error = (await rejectionOf(callJson(outbound, "nope::stats"))) as OmniRelayError;
    expect(error).toMatchObject({ status: "unimplemented", code: "omnirelay.procedure.not_found" });
    expect(error.metadata).toEqual({ procedure: "nope::stats" });
    expect((await rawCall(port, "nope")).code).toBe(GrpcStatus.UNIMPLEMENTED);
  });

  it("the outbound refuses procedures the service has no rpc for, without calling", async () => {
    const error = (await rejectionOf(callJson(outbound, "resourcelease::explode"))) as OmniRelayError;
    expect(error).toMatchObject({ status: "unimplemented", code: "omnirelay.grpc.procedure_unsupported" });
    const bad = (await rejectionOf(
      callJson(outbound, "resourcelease::lease", { body: { waitMs: "soon" } }),
    )) as OmniRelayError;
    expect(bad).toMatchObject({ status: "invalid-argument", code: "resourcelease.argument.invalid" });
    expect(received).toHaveLength(0);
  });

  it("a call past its deadline fails with deadline-exceeded and aborts the handler's signal", async () => {
    const aborted = deferred<unknown>();
    dispatcher.registerJson("slow::stats", (_body, meta) => {
      meta.signal.addEventListener("abort", () => aborted.resolve(meta.signal.reason), { once: true });
      return new Promise(() => {});
    });
    const started = Date.now();
    const error = (await rejectionOf(
      callJson(outbound, "slow::stats", { deadline: Date.now() + 150 }),
    )) as OmniRelayError;
    expect(error).toMatchObject({ status: "deadline-exceeded", code: "omnirelay.deadline_exceeded" });
    expect(Date.now() - started).toBeLessThan(2000);
    expect(await aborted.promise).toMatchObject({ status: "deadline-exceeded", code: "omnirelay.deadline_exceeded" });
  });

  it("rpc-ttl-ms sets the deadline; a malformed one is INVALID_ARGUMENT naming the header", async () => {
    const before = Date.now();
    const ok = await rawCall(port, "resourcelease", { "rpc-ttl-ms": "5000" });
    expect(ok.code).toBe(GrpcStatus.OK);
    const deadline = received.at(-1)!.meta.deadline!;
    expect(deadline).toBeGreaterThanOrEqual(before + 5000);
    expect(deadline).toBeLessThan(Date.now() + 5000 + 1);
    const bad = await rawCall(port, "resourcelease", { "rpc-ttl-ms": "soon" });
    expect(bad.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(bad.metadata.get("omnirelay-error-code")).toEqual(["omnirelay.request.invalid_header"]);
    expect(bad.metadata.get("omnirelay-meta-header")).toEqual(["rpc-ttl-ms"]);
  });

  it("aborting the caller's signal cancels the call on both sides", async () => {
    const aborted = deferred();
    const entered = deferred();
    dispatcher.registerJson("slow::lease", (_body, meta) => {
      meta.signal.addEventListener("abort", () => aborted.resolve(), { once: true });
      entered.resolve();
      return new Promise(() => {});
    });
    const controller = new AbortController();
    const pendingCall = rejectionOf(callJson(outbound, "slow::lease", { signal: controller.signal }));
    await entered.promise;
    controller.abort();
    expect(await pendingCall).toMatchObject({ status: "cancelled", code: "omnirelay.cancelled" });
    await aborted.promise;
  });

  it("response headers a procedure sets arrive as response headers", async () => {
    // A procedure's middleware may add response headers to the answer.
    const addHeaders: UnaryInboundMiddleware = {
      handle: async (request, next) => ({
        ...(await next(request)),
        headers: { "x-omnirelay-node": "node-1", "Bad Header": "dropped" },
      }),
    };
    dispatcher.register({
      name: "hdr::stats",
      definition: ResourceLeaseProcedures.stats,
      handler: async () => ({ pendingCount: 0, activeLeaseCount: 0 }) as ResourceLeaseQueueStats,
      middleware: [addHeaders],
    });
    const { json, headers } = await callJson(outbound, "hdr::stats");
    expect(json).toEqual({ pendingCount: 0, activeLeaseCount: 0 });
    expect(headers?.["x-omnirelay-node"]).toBe("node-1");
  });

  it("a remote that cannot be reached is unavailable omnirelay.transport.unavailable", async () => {
    await inbound.close();
    const error = (await rejectionOf(callJson(outbound, "resourcelease::stats"))) as OmniRelayError;
    expect(error).toMatchObject({ status: "unavailable", code: "omnirelay.transport.unavailable" });
  });

  it("close() drains: in-flight calls finish, new calls are refused, then the state is stopped", async () => {
    const release = deferred();
    const entered = deferred();
    dispatcher.registerJson("slow::drain", async () => {
      entered.resolve();
      await release.promise;
      return { items: [], remainingCount: 0 };
    });
    const inFlight = callJson(outbound, "slow::drain");
    await entered.promise;
    const closing = inbound.close({ graceMs: 5000 });
    expect(inbound.state).toBe("draining");
    const late = (await rejectionOf(callJson(outbound, "resourcelease::stats"))) as OmniRelayError;
    expect(late.status).toBe("unavailable");
    release.resolve();
    expect((await inFlight).json).toEqual({ items: [], remainingCount: 0 });
    await closing;
    expect(inbound.state).toBe("stopped");
    expect(await rejectionOf(inbound.start())).toMatchObject({ code: "omnirelay.inbound.state" });
  });

  it("close() cancels calls that outlive the grace period", async () => {
    const aborted = deferred<unknown>();
    const entered = deferred();
    dispatcher.registerJson("stuck::drain", (_body, meta) => {
      meta.signal.addEventListener("abort", () => aborted.resolve(meta.signal.reason), { once: true });
      entered.resolve();
      return new Promise(() => {});
    });
    const inFlight = rejectionOf(callJson(outbound, "stuck::drain"));
    await entered.promise;
    await inbound.close({ graceMs: 100 });
    expect(inbound.state).toBe("stopped");
    expect(await aborted.promise).toMatchObject({ status: "unavailable", code: "omnirelay.inbound.shutting_down" });
    expect(await inFlight).toMatchObject({ status: "unavailable", code: "omnirelay.inbound.shutting_down" });
  });

  it("after close() the outbound refuses calls", async () => {
    await outbound.close();
    const error = await rejectionOf(callJson(outbound, "resourcelease::stats"));
    expect(error).toMatchObject({ status: "failed-precondition", code: "omnirelay.outbound.closed" });
  });
});

/** A raw `Stats` call with the generated client, to look at the gRPC status and trailers themselves. */
async function rawCall(
  port: number,
  namespace: string,
  extra: Record<string, string> = {},
): Promise<{ code: number; metadata: Metadata }> {
  const client = new ResourceLeaseServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  const metadata = new Metadata();
  metadata.set("rpc-namespace", namespace);
  for (const [k, v] of Object.entries(extra)) metadata.set(k, v);
  try {
    return await new Promise((resolve) => {
      client.stats({}, metadata, (error: ServiceError | null) => {
        resolve(
          error ? { code: error.code, metadata: error.metadata } : { code: GrpcStatus.OK, metadata: new Metadata() },
        );
      });
    });
  } finally {
    client.close();
  }
}
