import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import { ErrorCodes } from "../errors/codes.js";
import { ResourceLeaseQueue } from "../queue/queue.js";
import { item } from "../queue/test-helpers.js";
import { FakeClock } from "../testing/fake-clock.js";
import { canonicalEventBytes, hashReplicationEvent } from "./chain.js";
import { EventChainVerifier } from "./chain-verify.js";
import { decodeReplicationEvent, encodeReplicationEvent } from "./event.js";

/** A queue driven through enqueues, grants, completes, failures and a heartbeat; its events. */
async function workload() {
  const clock = new FakeClock();
  const events: ResourceLeaseReplicationEvent[] = [];
  const queue = new ResourceLeaseQueue({ clock, observers: [(e) => events.push(e)], maxAttempts: 2 });
  for (let i = 0; i < 6; i++) {
    await queue.enqueue(item(i, { body: new Uint8Array([i, 1, 2]), attributes: { b: "2", a: "1" }, priority: i % 2 }));
  }
  const grants = await queue.lease({ peerId: "w1", maxItems: 4 });
  clock.advance(10);
  await queue.heartbeat(grants[0]!.ownershipToken);
  await queue.complete(grants[1]!.ownershipToken);
  await queue.fail(grants[2]!.ownershipToken, { reason: "boom", errorCode: "worker.x" });
  return { queue, events, clock };
}

function verify(events: readonly ResourceLeaseReplicationEvent[]) {
  const v = new EventChainVerifier();
  for (const e of events) if (v.push(e)) break;
  return { divergence: v.finish(), verifier: v };
}

describe("event hash chain", () => {
  it("links every event a queue emits to its predecessor; the first carries none", async () => {
    const { events } = await workload();
    expect(events[0]!.previousHash).toBeUndefined();
    for (let i = 1; i < events.length; i++) {
      expect(events[i]!.previousHash).toBe(hashReplicationEvent(events[i - 1]!));
      expect(events[i]!.previousHash).toMatch(/^[A-Za-z0-9_-]{22}$/);
    }
    const { divergence, verifier } = verify(events);
    expect(divergence).toBeUndefined();
    expect(verifier.chainStartsAt).toBe(1);
    expect(verifier.lastSequence).toBe(events.length);
  });

  it("hashes the same after the JSON envelope round trip, and ignores metadata added in transit", async () => {
    const { events } = await workload();
    for (const e of events) {
      const back = decodeReplicationEvent(JSON.parse(JSON.stringify(encodeReplicationEvent(e))));
      expect(hashReplicationEvent(back)).toBe(hashReplicationEvent(e));
      const tagged = { ...e, metadata: { ...e.metadata, "shard.id": "7", "replication.source": "n/s" } };
      expect(hashReplicationEvent(tagged)).toBe(hashReplicationEvent(e));
    }
    const e = events[3]!;
    expect(hashReplicationEvent({ ...e, metadata: { ...e.metadata, extra: "x" } })).not.toBe(hashReplicationEvent(e));
    expect(hashReplicationEvent({ ...e, timestamp: e.timestamp + 1 })).not.toBe(hashReplicationEvent(e));
  });

  it("a rebuilt queue, from events or from a snapshot, continues the chain", async () => {
    const { queue, events, clock } = await workload();
    const fromEvents = await ResourceLeaseQueue.rebuild(events, { clock }, { activeLeases: "keep" });
    expect(fromEvents.snapshot()).toEqual(queue.snapshot());
    expect(queue.snapshot().lastEventHash).toBe(hashReplicationEvent(events.at(-1)!));
    const more: ResourceLeaseReplicationEvent[] = [];
    const fromSnapshot = await ResourceLeaseQueue.rebuild(
      [],
      { clock, observers: [(e) => more.push(e)] },
      { snapshot: queue.snapshot(), activeLeases: "keep" },
    );
    await fromSnapshot.enqueue(item("after"));
    expect(more[0]!.previousHash).toBe(hashReplicationEvent(events.at(-1)!));
    expect(verify([...events, ...more]).divergence).toBeUndefined();
  });

  it("names the altered event: its contents, or the previousHash it carries", async () => {
    const { events } = await workload();
    const body = events.map((e) => e);
    body[4] = { ...events[4]!, peerId: "intruder" };
    expect(verify(body).divergence).toEqual(
      expect.objectContaining({ sequenceNumber: 5, code: ErrorCodes.replication.chainBroken }),
    );
    const link = events.map((e) => e);
    link[6] = { ...events[6]!, previousHash: hashReplicationEvent(events[0]!) };
    expect(verify(link).divergence?.sequenceNumber).toBe(7);
    const last = events.map((e) => e);
    last[last.length - 2] = { ...events.at(-2)!, timestamp: 1 };
    expect(verify(last).divergence?.sequenceNumber).toBe(events.length - 1);
  });

  it("reports a gap at the first missing sequence number, and a hash missing after the chain started", async () => {
    const { events } = await workload();
    const gap = [...events.slice(0, 5), ...events.slice(6)];
    expect(verify(gap).divergence).toEqual(
      expect.objectContaining({ sequenceNumber: 6, code: ErrorCodes.replication.sequenceGap }),
    );
    const stripped = events.map((e, i) => (i === 7 ? { ...e, previousHash: undefined } : e));
    expect(verify(stripped).divergence).toEqual(
      expect.objectContaining({ sequenceNumber: 8, code: ErrorCodes.replication.chainBroken }),
    );
  });

  it("pins the canonical form: a stored chain must verify with every later release", () => {
    const event: ResourceLeaseReplicationEvent = {
      sequenceNumber: 7,
      eventType: "Enqueue",
      timestamp: 1_767_225_600_000,
      peerId: "wörker-1",
      previousHash: "AAECAwQFBgcICQoLDA0ODw",
      item: {
        payload: {
          resourceType: "table",
          resourceId: "sales.orders",
          partitionKey: "p",
          payloadEncoding: "json",
          body: new Uint8Array([0, 1, 255]),
          attributes: { b: "2", a: "1" },
          priority: 3,
        },
        sequenceId: 4,
        attempt: 1,
        enqueuedAt: 1_767_225_600_000,
      },
      metadata: { "queue.pending": "1", "queue.active": "0" },
    };
    expect(hashReplicationEvent(event)).toBe("Jq8moQbiomlRU2QF_n3_8g");
    // Text is UTF-8 after its byte length, ASCII or not.
    const bytes = canonicalEventBytes(event);
    expect(bytes.includes(Buffer.from([9, ...Buffer.from("wörker-1")]))).toBe(true);
    expect(bytes.includes(Buffer.from([12, ...Buffer.from("sales.orders")]))).toBe(true);
  });

  it("is the first 16 bytes of SHA-256 over the canonical bytes, base64url, for any digest", () => {
    // The hash is cut from the digest's text, not its bytes: every value of the cut's last character must agree.
    const lastChars = new Set<string>();
    for (let n = 0; n < 2000; n++) {
      const event: ResourceLeaseReplicationEvent = {
        sequenceNumber: n + 1,
        eventType: "Heartbeat",
        timestamp: 1_767_225_600_000 + n,
        ownership: { sequenceId: n, attempt: 1, leaseId: `lease-${n}`, fencingToken: 2 ** 53 - 1 - n },
        metadata: {},
      };
      const expected = createHash("sha256").update(canonicalEventBytes(event)).digest().subarray(0, 16);
      const actual = hashReplicationEvent(event);
      expect(actual).toBe(expected.toString("base64url"));
      expect(Buffer.from(actual, "base64url").equals(expected)).toBe(true);
      lastChars.add(actual.at(-1) as string);
    }
    expect([...lastChars].sort()).toEqual(["A", "Q", "g", "w"]);
  });

  it("hashes maps by sorted key, whatever order their keys come in (few or many, any case, any script)", () => {
    const keys = [
      "b",
      "a",
      "B",
      "ä",
      "a.b",
      "a-b",
      "",
      "z",
      "Z",
      "10",
      "9",
      "😀",
      "é",
      "e",
      "queue.pending",
      "queue.active",
    ];
    for (const n of [2, 3, 8, 16, 17, keys.length]) {
      const some = keys.slice(0, n);
      const many = [...some, ...(n > 16 ? ["x1", "x2", "x3"] : [])];
      const orders = [many, [...many].reverse(), [...many].sort(), [...many].sort().reverse()];
      const hashes = orders.map((order) => {
        const map = Object.fromEntries(order.map((k) => [k, `v${k}`]));
        const event: ResourceLeaseReplicationEvent = {
          sequenceNumber: 1,
          eventType: "Enqueue",
          timestamp: 0,
          item: {
            payload: { resourceType: "t", resourceId: "i", partitionKey: "p", payloadEncoding: "e", attributes: map },
            sequenceId: 1,
            attempt: 1,
            enqueuedAt: 0,
          },
          metadata: map,
        };
        return hashReplicationEvent(event);
      });
      expect(new Set(hashes).size).toBe(1);
    }
  });

  it("reads a log older than the chain: unhashed events first, the chain starts where hashes do", async () => {
    const { events, clock } = await workload();
    const old = events.map(({ previousHash: _, ...e }) => e);
    const upgraded: ResourceLeaseReplicationEvent[] = [];
    const queue = await ResourceLeaseQueue.rebuild(
      old,
      { clock, observers: [(e) => upgraded.push(e)] },
      { activeLeases: "keep" },
    );
    await queue.enqueue(item("new-1"));
    await queue.enqueue(item("new-2"));
    const { divergence, verifier } = verify([...old, ...upgraded]);
    expect(divergence).toBeUndefined();
    expect(verifier.chainStartsAt).toBe(old.length);
    expect(verify(old).verifier.chainStartsAt).toBeUndefined();
    const tampered = [...old, ...upgraded];
    tampered[old.length - 1] = { ...old.at(-1)!, principal: "someone" };
    expect(verify(tampered).divergence?.sequenceNumber).toBe(old.length);
  });
});
