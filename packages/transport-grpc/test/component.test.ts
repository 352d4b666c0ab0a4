import { credentials, status as GrpcStatus, Metadata, type ServiceError } from "@grpc/grpc-js";
import {
  Dispatcher,
  HttpInbound,
  HttpOutbound,
  type OmniRelayError,
  ResourceLeaseDispatcherComponent,
  type UnaryOutbound,
} from "@omnirelay/core";
import { afterEach, describe, expect, it } from "vitest";
import { GrpcInbound, GrpcOutbound, ResourceLeaseServiceClient } from "../src/index.js";
import { Cleanup, callJson, rejectionOf } from "./harness.js";

const payload = (id: string) => ({
  resourceType: "table",
  resourceId: id,
  partitionKey: "p",
  payloadEncoding: "json",
  body: Buffer.from(JSON.stringify({ id })).toString("base64"),
  attributes: { tenant: "acme" },
});

describe("a real ResourceLeaseDispatcherComponent behind GrpcInbound", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.closeAll());

  async function grpcStack(): Promise<{ outbound: GrpcOutbound; port: number }> {
    const dispatcher = new Dispatcher({ service: "mesh" });
    cleanup.add(new ResourceLeaseDispatcherComponent(dispatcher, { queueOptions: { maxAttempts: 2 } }));
    const inbound = cleanup.add(new GrpcInbound({ dispatcher }));
    const { port } = await inbound.start();
    return { outbound: cleanup.add(new GrpcOutbound({ address: `127.0.0.1:${port}` })), port };
  }

  it("enqueue → lease → heartbeat → complete; a stale token is FAILED_PRECONDITION resourcelease.lease.fenced", async () => {
    const { outbound, port } = await grpcStack();
    const enqueued = await callJson(outbound, "resourcelease::enqueue", { body: { payload: payload("orders") } });
    expect(enqueued.json).toEqual({ sequenceId: 1, stats: { pendingCount: 1, activeLeaseCount: 0 } });

    const { json: grant } = await callJson(outbound, "resourcelease::lease", { body: { peerId: "worker-a" } });
    expect(grant).toMatchObject({ payload: payload("orders"), sequenceId: 1, attempt: 1, ownerPeerId: "worker-a" });
    const token = grant.ownershipToken as Record<string, unknown>;
    expect(token).toMatchObject({ sequenceId: 1, attempt: 1, fencingToken: 1 });
    expect(Date.parse(grant.leaseExpiresAt as string)).toBeGreaterThan(Date.now());

    const { json: beat } = await callJson(outbound, "resourcelease::heartbeat", { body: { ownershipToken: token } });
    expect(beat).toMatchObject({ success: true });
    expect(beat.remainingMs).toBeGreaterThan(20_000);

    expect((await callJson(outbound, "resourcelease::complete", { body: { ownershipToken: token } })).json).toEqual({
      success: true,
    });
    const stale = (await rejectionOf(
      callJson(outbound, "resourcelease::complete", { body: { ownershipToken: token } }),
    )) as OmniRelayError;
    expect(stale).toMatchObject({ status: "failed-precondition", code: "resourcelease.lease.fenced" });

    // On the raw wire: gRPC FAILED_PRECONDITION with the code in its trailer.
    const raw = await rawComplete(port, token);
    expect(raw?.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(raw?.metadata.get("omnirelay-error-code")).toEqual(["resourcelease.lease.fenced"]);
    expect(raw?.metadata.get("omnirelay-status")).toEqual(["FAILED_PRECONDITION"]);

    expect((await callJson(outbound, "resourcelease::stats")).json).toMatchObject({
      pendingCount: 0,
      activeLeaseCount: 0,
      lastFencingToken: 1,
    });
  });

  it("answers a validation error with the same status, code and field as over HTTP", async () => {
    const { outbound } = await grpcStack();
    const { resourceType: _, ...noType } = payload("x");
    const error = (await rejectionOf(
      callJson(outbound, "resourcelease::enqueue", { body: { payload: noType } }),
    )) as OmniRelayError;
    expect(error.toJSON()).toMatchObject({
      status: "invalid-argument",
      code: "resourcelease.payload.resource_type_required",
      metadata: { field: "payload.resourceType" },
    });
  });

  it("gives the same answers as the HTTP transport for the same script (lossless mapping)", async () => {
    const grpc = (await grpcStack()).outbound;
    const httpDispatcher = new Dispatcher({ service: "mesh" });
    cleanup.add(new ResourceLeaseDispatcherComponent(httpDispatcher, { queueOptions: { maxAttempts: 2 } }));
    const httpInbound = cleanup.add(new HttpInbound({ dispatcher: httpDispatcher }));
    const { url } = await httpInbound.start();
    const http = cleanup.add(new HttpOutbound({ url }));
    const viaGrpc = await script(grpc);
    expect(viaGrpc).toHaveLength(15);
    expect(normalize(viaGrpc)).toEqual(normalize(await script(http)));
  });
});

/** Drives every verb, both forms of the batch ones, and collects each answer or error. */
async function script(outbound: UnaryOutbound): Promise<unknown[]> {
  const out: unknown[] = [];
  const call = async (verb: string, body: Record<string, unknown>) => {
    try {
      const { json } = await callJson(outbound, `resourcelease::${verb}`, { body });
      out.push({ verb, json });
      return json;
    } catch (error) {
      out.push({ verb, error: (error as OmniRelayError).toJSON() });
      return {};
    }
  };
  await call("enqueue", { payloads: [payload("a"), { ...payload("b"), requestId: "r-1" }, payload("c")] });
  await call("enqueue", { payload: { ...payload("b"), requestId: "r-1" } });
  await call("lease", {});
  const batch = await call("lease", { maxItems: 2, peerId: "w" });
  const [first, second] = (batch.items as Array<{ ownershipToken: unknown }>).map((g) => g.ownershipToken);
  await call("complete", { ownershipTokens: [first, { ...(first as object), fencingToken: 99 }] });
  await call("fail", { ownershipToken: second, reason: "poison", errorCode: "worker.bad", requeue: false });
  await call("deadletters", {});
  await call("redrive", { sequenceIds: [] });
  await call("redrive", {});
  await call("drain", {});
  await call("enqueue", { payload: payload("d") });
  await call("restore", { items: [{ payload: payload("z"), sequenceId: 50 }] });
  await call("lease", { maxItems: 10, waitMs: 0 });
  await call("heartbeat", { ownershipToken: { sequenceId: 999, attempt: 1, leaseId: "nope", fencingToken: 1 } });
  await call("stats", {});
  return out;
}

const iso = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** Replaces what legitimately differs between two runs (times, lease ids, remaining ms) with placeholders. */
function normalize(value: unknown, key = ""): unknown {
  if (Array.isArray(value)) return value.map((v) => normalize(v));
  if (value && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v, k)]));
  }
  if (typeof value === "string" && iso.test(value)) return "<time>";
  if (key === "leaseId" || key === "remainingMs") return `<${key}>`;
  return value;
}

async function rawComplete(port: number, token: unknown): Promise<ServiceError | null> {
  const client = new ResourceLeaseServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    return await new Promise((resolve) => {
      client.complete({ ownershipToken: token as never }, new Metadata(), (error) => resolve(error));
    });
  } finally {
    client.close();
  }
}
