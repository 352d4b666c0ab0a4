import { afterEach, describe, expect, it } from "vitest";
import {
  type ResourceLeaseDispatcherComponentOptions,
  ResourceLeaseQueue,
  type ResourceLeaseQueueOptions,
  type ResourceLeaseReplicationEvent,
  type ResourceLeaseReplicator,
} from "../src/index.js";
import { decodeReplicationEvent, encodeReplicationEvent } from "../src/wire/index.js";
import { payload, startServer } from "./http-helpers.js";

// Findings 1, 2 and 7 of the hardening issue, reproduced over HTTP against a live dispatcher whose log stores each
// event as JSON text (what every durable sink does), then replayed as a restart would.

/** A log that keeps events the way durable sinks do: as the JSON text of their envelope. */
class JsonTextLog implements ResourceLeaseReplicator {
  readonly rows: string[] = [];
  async publish(events: readonly ResourceLeaseReplicationEvent[]): Promise<void> {
    for (const event of events) this.rows.push(JSON.stringify(encodeReplicationEvent(event)));
  }
  /** A restart: every row decoded and replayed. */
  reopen(options: ResourceLeaseQueueOptions = {}): Promise<ResourceLeaseQueue> {
    return ResourceLeaseQueue.rebuild(
      this.rows.map((row) => decodeReplicationEvent(JSON.parse(row))),
      options,
    );
  }
}

const servers: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(queueOptions: ResourceLeaseQueueOptions = {}) {
  const log = new JsonTextLog();
  const component: ResourceLeaseDispatcherComponentOptions = { queueOptions: { ...queueOptions, replicator: log } };
  const server = await startServer({ components: [component] });
  servers.push(server);
  return { ...server, log };
}

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

describe("finding 1: a restore cannot push item ids out of the safe-integer range", () => {
  it("refuses a restored id of 2^53-1; enqueues go on and the log replays", async () => {
    const s = await serve();
    const restore = await s.post("resourcelease::restore", {
      items: [{ payload: payload("evil"), sequenceId: MAX_SAFE }],
    });
    expect(restore.status).toBe(400);
    expect(restore.json).toMatchObject({
      code: "resourcelease.argument.invalid",
      metadata: { field: "items[0].sequenceId" },
    });

    for (let i = 0; i < 3; i++) {
      const r = await s.post("resourcelease::enqueue", { payload: payload(`ok-${i}`) });
      expect(r.status).toBe(200);
      expect(r.json.sequenceId).toBe(i + 1);
    }
    const reopened = await s.log.reopen();
    expect(reopened.stats()).toMatchObject({ pendingCount: 3, lastEventSequence: 3 });
  });

  it("accepts the highest allowed id (2^52); the next enqueue's id is still safe and survives a restart", async () => {
    const s = await serve();
    const top = 2 ** 52;
    expect(
      (await s.post("resourcelease::restore", { items: [{ payload: payload("a"), sequenceId: top }] })).status,
    ).toBe(200);
    const next = await s.post("resourcelease::enqueue", { payload: payload("b") });
    expect(next.json.sequenceId).toBe(top + 1);
    expect(Number.isSafeInteger(next.json.sequenceId)).toBe(true);
    const reopened = await s.log.reopen();
    expect(reopened.snapshot().pending.map((p) => p.sequenceId)).toEqual([top, top + 1]);
  });

  it("past 2^52 the queue's own drained items come back with their ids, and cancel and history reach them", async () => {
    const s = await serve();
    const top = 2 ** 52;
    await s.post("resourcelease::restore", { items: [{ payload: payload("a"), sequenceId: top }] });
    for (const id of ["b", "c"]) await s.post("resourcelease::enqueue", { payload: payload(id) });
    const drained = await s.post("resourcelease::drain", {});
    expect(drained.json.items.map((i: { sequenceId: number }) => i.sequenceId)).toEqual([top, top + 1, top + 2]);
    // Undoing the drain with exactly what it returned must work, or the queue stays draining.
    const back = await s.post("resourcelease::restore", { items: drained.json.items });
    expect(back.status).toBe(200);
    expect(back.json).toEqual({ restoredCount: 3 });
    expect((await s.post("resourcelease::enqueue", { payload: payload("d") })).json.sequenceId).toBe(top + 3);
    expect((await s.post("resourcelease::history", { sequenceId: top + 1 })).status).toBe(200);
    expect((await s.post("resourcelease::cancel", { sequenceId: top + 2 })).status).toBe(200);
    // An id above 2^52 that the queue never gave is still refused, as is one beyond its counter.
    for (const sequenceId of [top + 10, MAX_SAFE]) {
      const foreign = await s.post("resourcelease::restore", { items: [{ payload: payload("x"), sequenceId }] });
      expect(foreign.status).toBe(400);
      expect(foreign.json).toMatchObject({
        code: "resourcelease.argument.invalid",
        metadata: { field: "items[0].sequenceId" },
      });
    }
    const reopened = await s.log.reopen();
    expect(reopened.snapshot().pending.map((p) => p.sequenceId)).toEqual([top, top + 1, top + 3]);
    expect(reopened.stats().state).toBe("running");
  });

  it("a restored id that the queue already used is refused unless renumbered; its own drained ids come back", async () => {
    const s = await serve();
    for (const id of ["a", "b", "c"]) await s.post("resourcelease::enqueue", { payload: payload(id) });
    const lease = await s.post("resourcelease::lease", { maxItems: 1 });
    await s.post("resourcelease::complete", { ownershipToken: lease.json.items[0].ownershipToken });
    // Item 1 completed: a foreign item claiming id 1 would collide with it in the log's history.
    const foreign = await s.post("resourcelease::restore", { items: [{ payload: payload("x"), sequenceId: 1 }] });
    expect(foreign.status).toBe(409);
    expect(foreign.json.code).toBe("resourcelease.restore.duplicate_item");
    const renumbered = await s.post("resourcelease::restore", {
      items: [{ payload: payload("x"), sequenceId: 1 }],
      renumber: true,
    });
    expect(renumbered.json).toEqual({ restoredCount: 1, sequenceIds: [4] });

    const drained = await s.post("resourcelease::drain", {});
    expect(drained.json.items.map((i: { sequenceId: number }) => i.sequenceId)).toEqual([2, 3, 4]);
    const back = await s.post("resourcelease::restore", { items: drained.json.items });
    expect(back.json).toEqual({ restoredCount: 3 });
    // A retried restore of the same page adds nothing twice.
    expect((await s.post("resourcelease::restore", { items: drained.json.items })).status).toBe(409);
    expect((await s.log.reopen()).stats()).toMatchObject({ pendingCount: 3, state: "running" });
  });
});

describe("finding 2: what the API accepts, the log can encode and decode", () => {
  it("refuses a restored enqueuedAt outside what ISO-8601 can write; the queue is not faulted", async () => {
    const s = await serve();
    for (const enqueuedAt of [8_700_000_000_000_000, 253_402_300_800_000, -1]) {
      const r = await s.post("resourcelease::restore", {
        items: [{ payload: payload("t"), sequenceId: 1, enqueuedAt }],
      });
      expect(r.status).toBe(400);
      expect(r.json).toMatchObject({
        code: "resourcelease.argument.invalid",
        metadata: { field: "items[0].enqueuedAt" },
      });
    }
    const stats = await s.post("resourcelease::stats", {});
    expect(stats.json.state).toBe("running");
    const last = "9999-12-31T23:59:59.999Z";
    const ok = await s.post("resourcelease::restore", {
      items: [{ payload: payload("t"), sequenceId: 1, enqueuedAt: last }],
    });
    expect(ok.status).toBe(200);
    const reopened = await s.log.reopen();
    expect(reopened.snapshot().pending[0]?.enqueuedAt).toBe(Date.parse(last));
  });

  it("refuses strings a UTF-8 log cannot carry and keys a plain object cannot hold", async () => {
    const s = await serve();
    const cases: Array<[Record<string, unknown>, string]> = [
      [payload("\ud800"), "payload.resourceId"],
      [payload("a", { attributes: { k: "\udfff" } }), "payload.attributes.k"],
      [payload("a", { attributes: { "\udfff": "v" } }), "payload.attributes"],
      [payload("a", { attributes: JSON.parse('{"__proto__":"x"}') }), "payload.attributes"],
      [payload("a", { requestId: "a\ud83d" }), "payload.requestId"],
    ];
    for (const [p, field] of cases) {
      const r = await s.post("resourcelease::enqueue", { payload: p });
      expect(r.status, field).toBe(400);
      expect(r.json.metadata.field).toBe(field);
    }
    // A well-formed astral character is fine and comes back from the log unchanged.
    const emoji = payload("\ud83d\ude00", { attributes: { "k\u00e9": "v\u0000" } });
    expect((await s.post("resourcelease::enqueue", { payload: emoji })).status).toBe(200);
    expect((await s.log.reopen()).snapshot().pending[0]?.payload).toMatchObject({
      resourceId: "\ud83d\ude00",
      attributes: { "k\u00e9": "v\u0000" },
    });
  });

  it("a fail's reason, code and metadata are bounded and survive the log", async () => {
    const s = await serve();
    await s.post("resourcelease::enqueue", { payload: payload("f") });
    const grant = (await s.post("resourcelease::lease", {})).json;
    const tooLong = await s.post("resourcelease::fail", {
      ownershipToken: grant.ownershipToken,
      reason: "r".repeat(4097),
    });
    expect(tooLong.json).toMatchObject({ code: "resourcelease.argument.invalid", metadata: { field: "reason" } });
    const many = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, "v"]));
    const tooMany = await s.post("resourcelease::fail", { ownershipToken: grant.ownershipToken, metadata: many });
    expect(tooMany.json).toMatchObject({ code: "resourcelease.argument.invalid", metadata: { field: "metadata" } });
    const ok = await s.post("resourcelease::fail", {
      ownershipToken: grant.ownershipToken,
      reason: "r".repeat(4096),
      errorCode: "e".repeat(256),
      requeue: false,
    });
    expect(ok.json).toEqual({ success: true, outcome: "dead_lettered" });
    const dead = (await s.log.reopen()).deadLetters();
    expect(dead[0]?.lastError).toEqual({ message: "r".repeat(4096), code: "e".repeat(256) });
  });
});

describe("finding 7: byte bounds", () => {
  it("refuses MiB-long ids and oversized bodies with the field and the limit", async () => {
    const s = await serve({ maxBodyBytes: 1000 });
    const longId = await s.post("resourcelease::enqueue", { payload: payload("x".repeat(1024 * 1024)) });
    expect(longId.status).toBe(400);
    expect(longId.json).toMatchObject({
      code: "resourcelease.payload.invalid",
      metadata: { field: "payload.resourceId", limit: "1024" },
    });
    const body = Buffer.alloc(1001, 1).toString("base64");
    const big = await s.post("resourcelease::enqueue", { payload: payload("b", { body }) });
    expect(big.json).toMatchObject({
      code: "resourcelease.payload.too_large",
      metadata: { field: "payload.body", limit: "1000" },
    });
    const fits = await s.post("resourcelease::enqueue", {
      payload: payload("b", { body: Buffer.alloc(1000, 1).toString("base64") }),
    });
    expect(fits.status).toBe(200);
  });

  it("keeps a byte budget: stats report bytes held, and an enqueue past maxBytes is refused", async () => {
    const s = await serve({ maxBytes: 10_000 });
    const body = Buffer.alloc(4000, 7).toString("base64");
    for (const id of ["a", "b"]) {
      expect((await s.post("resourcelease::enqueue", { payload: payload(id, { body }) })).status).toBe(200);
    }
    const stats = (await s.post("resourcelease::stats", {})).json;
    expect(stats).toMatchObject({ pendingCount: 2, maxBytes: 10_000 });
    // body + "table" + id + "p" + "json" per item.
    expect(stats.bytesHeld).toBe(2 * (4000 + 5 + 1 + 1 + 4));
    const third = await s.post("resourcelease::enqueue", { payload: payload("c", { body }) });
    expect(third.status).toBe(429);
    expect(third.json).toMatchObject({ code: "resourcelease.queue.full", metadata: { limit: "bytes" } });
    // Completing frees the bytes.
    const grant = (await s.post("resourcelease::lease", {})).json;
    await s.post("resourcelease::complete", { ownershipToken: grant.ownershipToken });
    expect((await s.post("resourcelease::enqueue", { payload: payload("c", { body }) })).status).toBe(200);
    expect((await s.log.reopen({ maxBytes: 10_000 })).stats().bytesHeld).toBe(2 * 4011);
  });

  it("drain pages its output so every page fits in one restore; drain and restore round-trip a large queue", async () => {
    // 24 items of 300 KiB: one unpaged answer would be ~9.6 MiB of JSON, over restore's 4 MiB request limit.
    const s = await serve({ capacity: 100 });
    const body = Buffer.alloc(300 * 1024, 3).toString("base64");
    for (let i = 0; i < 24; i++) {
      expect((await s.post("resourcelease::enqueue", { payload: payload(`big-${i}`, { body }) })).status).toBe(200);
    }
    const pages: unknown[][] = [];
    for (;;) {
      const r = await s.post("resourcelease::drain", {});
      expect(r.status).toBe(200);
      pages.push(r.json.items);
      expect(JSON.stringify(r.json).length).toBeLessThan(4 * 1024 * 1024);
      if (r.json.remainingCount === 0) break;
    }
    expect(pages.length).toBeGreaterThan(1);
    expect(pages.flat()).toHaveLength(24);
    for (const page of pages) expect((await s.post("resourcelease::restore", { items: page })).status).toBe(200);
    const stats = (await s.post("resourcelease::stats", {})).json;
    expect(stats).toMatchObject({ pendingCount: 24, state: "running" });
    expect((await s.log.reopen({ capacity: 100 })).snapshot().pending.map((p) => p.payload.resourceId)).toEqual(
      Array.from({ length: 24 }, (_, i) => `big-${i}`),
    );
  });
});
