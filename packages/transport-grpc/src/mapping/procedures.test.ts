import { isOmniRelayError, type ProcedureDefinition, ResourceLeaseProcedures } from "@omnirelay/core";
import { requestSite, responseSite } from "@omnirelay/core/wire";
import { describe, expect, it } from "vitest";
import { type ResourceLeaseRpc, resourceLeaseRpcs, selectResourceLeaseRpc } from "./procedures.js";

type Json = Record<string, unknown>;

// Each leg goes as it does between two processes: the request as a caller states it (the procedure's JSON shape) is
// read into the domain, written as the rpc's protobuf message, serialized, deserialized, read back into the domain
// with the same description, and written as JSON again for the comparison.
const definitionOf = (rpc: ResourceLeaseRpc) => ResourceLeaseProcedures[rpc.verb] as ProcedureDefinition;

function requestLeg(rpc: ResourceLeaseRpc, json: Json): Json {
  const definition = definitionOf(rpc);
  const message = rpc.toRequest(definition.request.write(definition.request.read(json, requestSite()), "proto"));
  const decoded = rpc.method.requestDeserialize(rpc.method.requestSerialize(message)) as Json;
  return definition.request.write(definition.request.read(rpc.fromRequest(decoded), requestSite()), "json");
}

function responseLeg(rpc: ResourceLeaseRpc, json: Json): Json {
  const definition = definitionOf(rpc);
  const message = rpc.toResponse(definition.response.write(definition.response.read(json, responseSite()), "proto"));
  const decoded = rpc.method.responseDeserialize(rpc.method.responseSerialize(message)) as Json;
  return definition.response.write(definition.response.read(rpc.fromResponse(decoded), responseSite()), "json");
}

function caught(fn: () => unknown): { status: string; code: string; metadata: Record<string, string> } {
  try {
    fn();
  } catch (error) {
    if (!isOmniRelayError(error)) throw error;
    return { status: error.status, code: error.code, metadata: { ...error.metadata } };
  }
  throw new Error("expected an OmniRelayError");
}

const fullPayload = {
  resourceType: "table",
  resourceId: "orders",
  partitionKey: "p-1",
  payloadEncoding: "json",
  body: Buffer.from([0, 1, 2, 250, 255]).toString("base64"),
  attributes: { tenant: "acme", "x.y": "ünïcode" },
  requestId: "req-1",
  notBefore: "2026-01-01T00:00:05.000Z",
  priority: -(2 ** 31),
};
const minimalPayload = { resourceType: "t", resourceId: "r", partitionKey: "p", payloadEncoding: "raw" };
const token = { sequenceId: 7, attempt: 2, leaseId: "8d4e…", fencingToken: 41 };
const grant = {
  payload: fullPayload,
  sequenceId: 7,
  attempt: 2,
  enqueuedAt: "2026-01-01T00:00:00.000Z",
  lastError: { message: "boom", code: "worker.crash" },
  ownershipToken: token,
  ownerPeerId: "worker-a",
  leaseExpiresAt: "2026-01-01T00:00:30.000Z",
};
const pendingFull = {
  payload: fullPayload,
  sequenceId: 3,
  attempt: 4,
  enqueuedAt: "2026-01-01T00:00:00.000Z",
  lastError: { message: "no code" },
  lastOwnershipToken: token,
  availableAt: "2026-01-01T00:01:00.000Z",
};

describe("request mapping", () => {
  it("enqueue keeps every payload field, bytes and attributes included", () => {
    expect(requestLeg(resourceLeaseRpcs.enqueue, { payload: fullPayload })).toEqual({ payload: fullPayload });
    expect(requestLeg(resourceLeaseRpcs.enqueue, { payload: minimalPayload })).toEqual({ payload: minimalPayload });
  });

  it("enqueue keeps notBefore, delayMs and priority, a priority of 0 included (proto3 optional has presence)", () => {
    const scheduled = { ...minimalPayload, delayMs: 2 ** 40, priority: 0 };
    expect(requestLeg(resourceLeaseRpcs.enqueue, { payload: scheduled })).toEqual({ payload: scheduled });
    expect(
      caught(() => requestLeg(resourceLeaseRpcs.enqueue, { payload: { ...minimalPayload, priority: 2 ** 31 } })),
    ).toMatchObject({ code: "resourcelease.payload.invalid" });
  });

  it("keeps an empty body apart from an absent one", () => {
    const out = requestLeg(resourceLeaseRpcs.enqueue, { payload: { ...minimalPayload, body: "" } });
    expect(out).toEqual({ payload: { ...minimalPayload, body: "" } });
    expect(requestLeg(resourceLeaseRpcs.enqueue, { payload: minimalPayload }).payload).not.toHaveProperty("body");
  });

  it("reads property names case-insensitively and writes camelCase", () => {
    const out = requestLeg(resourceLeaseRpcs.enqueue, {
      Payload: { RESOURCETYPE: "t", resourceid: "r", PartitionKey: "p", payloadEncoding: "raw", RequestId: "x" },
    });
    expect(out).toEqual({ payload: { ...minimalPayload, requestId: "x" } });
  });

  it("an absent payload is payload.required, as over HTTP", () => {
    expect(caught(() => requestLeg(resourceLeaseRpcs.enqueue, {}))).toMatchObject({
      code: "resourcelease.payload.required",
    });
  });

  it("an empty attribute map reads back as absent (proto maps have no presence)", () => {
    const out = requestLeg(resourceLeaseRpcs.enqueue, { payload: { ...minimalPayload, attributes: {} } });
    expect(out).toEqual({ payload: minimalPayload });
  });

  it("enqueue batch keeps order; an empty batch is refused, as over HTTP", () => {
    const payloads = [fullPayload, minimalPayload];
    expect(requestLeg(resourceLeaseRpcs.enqueueBatch, { payloads })).toEqual({ payloads });
    expect(caught(() => requestLeg(resourceLeaseRpcs.enqueueBatch, { payloads: [] }))).toMatchObject({
      code: "resourcelease.payload.required",
      metadata: { field: "payloads" },
    });
  });

  it("lease options survive only when given; maxItems selects the batch rpc", () => {
    expect(requestLeg(resourceLeaseRpcs.lease, {})).toEqual({});
    expect(requestLeg(resourceLeaseRpcs.lease, { peerId: "w", waitMs: 0 })).toEqual({ peerId: "w", waitMs: 0 });
    expect(requestLeg(resourceLeaseRpcs.leaseBatch, { maxItems: 5, waitMs: 250 })).toEqual({
      maxItems: 5,
      waitMs: 250,
    });
  });

  it("token requests carry the four token fields; decimal strings read as numbers like core does", () => {
    expect(requestLeg(resourceLeaseRpcs.heartbeat, { ownershipToken: token })).toEqual({ ownershipToken: token });
    const fromStrings = { ...token, sequenceId: "7", fencingToken: "41" };
    expect(requestLeg(resourceLeaseRpcs.complete, { ownershipToken: fromStrings })).toEqual({ ownershipToken: token });
    expect(caught(() => requestLeg(resourceLeaseRpcs.complete, {})).code).toBe("resourcelease.lease.token_required");
  });

  it("complete batch keeps an empty token list (distinct from a single complete without a token)", () => {
    expect(requestLeg(resourceLeaseRpcs.completeBatch, { ownershipTokens: [] })).toEqual({ ownershipTokens: [] });
    expect(requestLeg(resourceLeaseRpcs.completeBatch, { ownershipTokens: [token, token] })).toEqual({
      ownershipTokens: [token, token],
    });
  });

  it("fail keeps requeue=false, an absent requeue stays absent, and metadata survives", () => {
    const full = {
      ownershipToken: token,
      reason: "bad input",
      errorCode: "worker.invalid",
      requeue: false,
      delayMs: 1500,
      metadata: { attempt: "2", host: "a" },
    };
    expect(requestLeg(resourceLeaseRpcs.fail, full)).toEqual(full);
    const out = requestLeg(resourceLeaseRpcs.fail, { ownershipToken: token });
    expect(out).toEqual({ ownershipToken: token });
    expect(out).not.toHaveProperty("requeue");
  });

  it("restore keeps items whose attempt and enqueuedAt were left out, and converts ms times to ISO", () => {
    const bare = { payload: minimalPayload, sequenceId: 9 };
    expect(requestLeg(resourceLeaseRpcs.restore, { items: [pendingFull, bare] })).toEqual({
      items: [pendingFull, bare],
    });
    expect(requestLeg(resourceLeaseRpcs.restore, {})).toEqual({ items: [] });
    const ms = Date.UTC(2026, 0, 2);
    const out = requestLeg(resourceLeaseRpcs.restore, { items: [{ ...bare, enqueuedAt: ms }] });
    expect(out).toEqual({ items: [{ ...bare, enqueuedAt: "2026-01-02T00:00:00.000Z" }] });
  });

  it("redrive tells an absent id list (all) from an empty one (none)", () => {
    expect(requestLeg(resourceLeaseRpcs.redrive, {})).toEqual({});
    expect(requestLeg(resourceLeaseRpcs.redrive, { sequenceIds: [] })).toEqual({ sequenceIds: [] });
    expect(requestLeg(resourceLeaseRpcs.redrive, { sequenceIds: [3, 1] })).toEqual({ sequenceIds: [3, 1] });
  });

  it("deadletters, drain and stats requests", () => {
    expect(requestLeg(resourceLeaseRpcs.deadLetters, { limit: 10 })).toEqual({ limit: 10 });
    expect(requestLeg(resourceLeaseRpcs.deadLetters, {})).toEqual({});
    expect(requestLeg(resourceLeaseRpcs.drain, { ignored: true })).toEqual({});
    expect(requestLeg(resourceLeaseRpcs.drain, { maxItems: 50 })).toEqual({ maxItems: 50 });
    expect(requestLeg(resourceLeaseRpcs.stats, {})).toEqual({});
  });

  it("a protobuf default (0) for a required number is read like an absent one: refused with the procedure's code", () => {
    const message = resourceLeaseRpcs.leaseBatch.method.requestDeserialize(
      resourceLeaseRpcs.leaseBatch.method.requestSerialize(resourceLeaseRpcs.leaseBatch.toRequest({ waitMs: 5 })),
    ) as Json;
    expect(
      caught(() =>
        ResourceLeaseProcedures.lease.request.read(resourceLeaseRpcs.leaseBatch.fromRequest(message), requestSite()),
      ),
    ).toMatchObject({ code: "resourcelease.argument.invalid", metadata: { field: "maxItems" } });
  });

  it("rejects values no field can carry with the code core's HTTP decoder uses", () => {
    const cases: Array<[ResourceLeaseRpc, Json, string, string]> = [
      [
        resourceLeaseRpcs.enqueue,
        { payload: { ...minimalPayload, resourceType: 5 } },
        "resourcelease.payload.resource_type_required",
        "payload.resourceType",
      ],
      [
        resourceLeaseRpcs.enqueue,
        { payload: { ...minimalPayload, body: "not base64!" } },
        "resourcelease.payload.invalid",
        "payload.body",
      ],
      [resourceLeaseRpcs.enqueue, { payload: "x" }, "resourcelease.payload.invalid", "payload"],
      [
        resourceLeaseRpcs.enqueueBatch,
        { payloads: [minimalPayload, null] },
        "resourcelease.payload.required",
        "payloads[1]",
      ],
      [resourceLeaseRpcs.enqueueBatch, { payloads: "x" }, "resourcelease.argument.invalid", "payloads"],
      [resourceLeaseRpcs.lease, { waitMs: "five" }, "resourcelease.argument.invalid", "waitMs"],
      [resourceLeaseRpcs.lease, { waitMs: 1.5 }, "resourcelease.argument.invalid", "waitMs"],
      [
        resourceLeaseRpcs.heartbeat,
        { ownershipToken: { ...token, attempt: "two" } },
        "resourcelease.lease.token_required",
        "ownershipToken.attempt",
      ],
      [
        resourceLeaseRpcs.completeBatch,
        { ownershipTokens: [null] },
        "resourcelease.lease.token_required",
        "ownershipTokens[0]",
      ],
      [resourceLeaseRpcs.fail, { ownershipToken: token, requeue: "no" }, "resourcelease.argument.invalid", "requeue"],
      [
        resourceLeaseRpcs.fail,
        { ownershipToken: token, metadata: { a: 1 } },
        "resourcelease.argument.invalid",
        "metadata.a",
      ],
      [resourceLeaseRpcs.restore, { items: [null] }, "resourcelease.restore.pending_item_required", "items[0]"],
      [resourceLeaseRpcs.redrive, { sequenceIds: [1, "two"] }, "resourcelease.argument.invalid", "sequenceIds[1]"],
    ];
    for (const [rpc, json, code, field] of cases) {
      expect(
        caught(() => requestLeg(rpc, json)),
        `${rpc.name} ${field}`,
      ).toEqual({
        status: "invalid-argument",
        code,
        metadata: { field },
      });
    }
  });
});

describe("response mapping", () => {
  it("enqueue: duplicate only when the procedure said so; stats keep only the counters sent", () => {
    const stats = { pendingCount: 3, activeLeaseCount: 1 };
    expect(responseLeg(resourceLeaseRpcs.enqueue, { sequenceId: 5, stats })).toEqual({ sequenceId: 5, stats });
    expect(responseLeg(resourceLeaseRpcs.enqueue, { sequenceId: 5, duplicate: true, stats })).toEqual({
      sequenceId: 5,
      duplicate: true,
      stats,
    });
  });

  it("enqueue batch", () => {
    const json = { sequenceIds: [1, 2], duplicates: [false, true], stats: { pendingCount: 0, activeLeaseCount: 0 } };
    expect(responseLeg(resourceLeaseRpcs.enqueueBatch, json)).toEqual(json);
  });

  it("lease: a grant comes back flat, no item comes back as {}", () => {
    expect(responseLeg(resourceLeaseRpcs.lease, grant)).toEqual(grant);
    expect(responseLeg(resourceLeaseRpcs.lease, {})).toEqual({});
    const { ownerPeerId: _, lastError: __, ...bare } = grant;
    expect(responseLeg(resourceLeaseRpcs.lease, bare)).toEqual(bare);
  });

  it("lease batch: empty and full", () => {
    expect(responseLeg(resourceLeaseRpcs.leaseBatch, { items: [] })).toEqual({ items: [] });
    expect(responseLeg(resourceLeaseRpcs.leaseBatch, { items: [grant, grant] })).toEqual({ items: [grant, grant] });
  });

  it("heartbeat, complete, complete batch, fail", () => {
    const hb = { success: true, leaseExpiresAt: "2026-01-01T00:00:30.000Z", remainingMs: 30000 };
    expect(responseLeg(resourceLeaseRpcs.heartbeat, hb)).toEqual(hb);
    expect(responseLeg(resourceLeaseRpcs.complete, { success: false })).toEqual({ success: false });
    const batch = {
      success: false,
      results: [{ success: true }, { success: false, code: "resourcelease.lease.fenced", message: "stale" }],
    };
    expect(responseLeg(resourceLeaseRpcs.completeBatch, batch)).toEqual(batch);
    expect(responseLeg(resourceLeaseRpcs.fail, { success: true, outcome: "dead_lettered" })).toEqual({
      success: true,
      outcome: "dead_lettered",
    });
  });

  it("drain, restore, deadletters, redrive", () => {
    const bare = { payload: minimalPayload, sequenceId: 2, attempt: 1, enqueuedAt: "2026-01-01T00:00:00.000Z" };
    expect(responseLeg(resourceLeaseRpcs.drain, { items: [pendingFull, bare], remainingCount: 7 })).toEqual({
      items: [pendingFull, bare],
      remainingCount: 7,
    });
    expect(responseLeg(resourceLeaseRpcs.restore, { restoredCount: 2 })).toEqual({ restoredCount: 2 });
    const dead = { ...pendingFull, deadLetteredAt: "2026-01-01T00:02:00.000Z", reason: "max_attempts" };
    expect(responseLeg(resourceLeaseRpcs.deadLetters, { items: [dead] })).toEqual({ items: [dead] });
    expect(responseLeg(resourceLeaseRpcs.redrive, { redrivenCount: 0 })).toEqual({ redrivenCount: 0 });
  });

  it("stats: every counter when sent, zeros included", () => {
    const full = {
      pendingCount: 0,
      activeLeaseCount: 0,
      delayedCount: 0,
      deadLetterCount: 2,
      state: "draining",
      lastEventSequence: 99,
      lastFencingToken: 12,
      capacity: 512,
    };
    expect(responseLeg(resourceLeaseRpcs.stats, full)).toEqual(full);
    expect(responseLeg(resourceLeaseRpcs.stats, { pendingCount: 1, activeLeaseCount: 2 })).toEqual({
      pendingCount: 1,
      activeLeaseCount: 2,
    });
  });
});

describe("selectResourceLeaseRpc", () => {
  it("picks the batch rpc from the request and the one rpc of every other verb", () => {
    const P = ResourceLeaseProcedures as Record<string, ProcedureDefinition>;
    expect(selectResourceLeaseRpc(P.enqueue!, { payloads: [], batch: false })?.name).toBe("enqueue");
    expect(selectResourceLeaseRpc(P.enqueue!, { payloads: [], batch: true })?.name).toBe("enqueueBatch");
    expect(selectResourceLeaseRpc(P.lease!, {})?.name).toBe("lease");
    expect(selectResourceLeaseRpc(P.lease!, { maxItems: 2 })?.name).toBe("leaseBatch");
    expect(selectResourceLeaseRpc(P.complete!, { ownershipTokens: [], batch: true })?.name).toBe("completeBatch");
    expect(selectResourceLeaseRpc(P.deadletters!, {})?.name).toBe("deadLetters");
    expect(selectResourceLeaseRpc(P.stats!, {})?.name).toBe("stats");
    expect(selectResourceLeaseRpc({ ...P.stats!, verb: "explode" }, {})).toBeUndefined();
  });
});
