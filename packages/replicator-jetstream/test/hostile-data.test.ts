import { createHash } from "node:crypto";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";
import { ErrorCodes, type ResourceLeaseItemPayload } from "@omnirelay/core";
import { encodeReplicationEvent } from "@omnirelay/core/wire";
import { afterAll, describe, expect, it } from "vitest";
import {
  JetStreamErrorCodes,
  JetStreamResourceLeaseEventLog,
  JetStreamShardOwnership,
  openJetStreamResourceLeaseQueue,
  openOwnedJetStreamResourceLeaseQueue,
} from "../src/index.js";
import { batchHeaders, collect, NATS_URL, rejectionOf, testStream } from "./helpers.js";

// Real parts: the machine's NATS server; a stream and buckets of this file's own. Each test writes what someone with
// publish rights on the stream or write rights on a bucket could write, then opens, appends or acquires.
const js = testStream();
const opened: JetStreamShardOwnership[] = [];
afterAll(async () => {
  for (const o of opened) await o.close().catch(() => undefined);
  const jsm = await jetstreamManager(await js.connection());
  await jsm.streams.delete(`${js.stream}_DEL`).catch(() => undefined); // left by a failed run of the deletion case
  await js.remove();
});

const item = (n: number): ResourceLeaseItemPayload => ({
  resourceType: "table",
  resourceId: `r${n}`,
  partitionKey: `p${n}`,
  payloadEncoding: "json",
});

const heartbeat = { sequenceNumber: 1, eventType: "Heartbeat" as const, timestamp: 1, metadata: {} };

async function bucket(name: string) {
  return new Kvm(await js.connection()).create(name, { history: 1 });
}

async function ownership(nodeId: string): Promise<JetStreamShardOwnership> {
  const o = await JetStreamShardOwnership.open({
    servers: NATS_URL,
    bucket: js.ownersBucket,
    nodeId,
    url: `http://${nodeId}.test:8080`,
    ownershipTtlMs: 200,
  });
  opened.push(o);
  return o;
}

describe("ownership keys someone else wrote", () => {
  it("an epoch at 2^53 - 1 or below 0 never reaches the log: the shard is taken, and its log still opens", async () => {
    for (const [shard, epoch] of [
      ["epoch-max", Number.MAX_SAFE_INTEGER],
      ["epoch-neg", -1],
    ] as const) {
      await (await bucket(js.ownersBucket)).put(shard, JSON.stringify({ owner: "x", url: "", epoch, renewedAt: 0 }));
      const node = await ownership(`n-${shard}`);
      // Before: epoch + 1 (2^53, or 0) went into the owner-epoch marker, which no reader accepts: this open, and every
      // later open of the shard, failed with data-loss corrupt.
      const owned = await openOwnedJetStreamResourceLeaseQueue({
        ownership: node,
        log: js.options(shard),
        snapshotBucket: js.snapshotBucket,
        acquireWaitMs: 5000,
      });
      expect(owned.lease.epoch).toBe(1); // the unreadable key counts as epoch 0
      await owned.queue.enqueue(item(1));
      await owned.close();
      expect((await js.markersOn(shard)).map((m) => m.epoch)).toEqual([1]);
      await using reopened = await openJetStreamResourceLeaseQueue({
        log: js.options(shard),
        snapshotBucket: js.snapshotBucket,
      });
      expect(reopened.queue.stats().pendingCount).toBe(1);
    }
  });

  it("a MiB-long or CR/LF-laden owner or URL is not passed on into not_owner errors", async () => {
    const kv = await bucket(js.ownersBucket);
    const node = await ownership("n-text");
    for (const [shard, record] of [
      ["text-mib", { owner: "o".repeat(900_000), url: "http://x", epoch: 3, renewedAt: 0 }],
      ["text-crlf", { owner: "n0", url: "http://x\r\nSet-Cookie: a=b", epoch: 3, renewedAt: 0 }],
    ] as const) {
      await kv.put(shard, JSON.stringify(record));
      const error = await rejectionOf(node.acquire(shard, { waitMs: 0 }));
      expect(error.code).toBe(ErrorCodes.resourceLease.notOwner);
      expect(error.message.length).toBeLessThan(500);
      expect([error.metadata.owner, error.metadata.ownerUrl]).toEqual(["(unreadable)", ""]);
      expect((await node.owner(shard))?.owner).toBe("(unreadable)");
    }
  });

  it("refuses a node id or URL with control characters (they go into NATS headers and ownership keys)", async () => {
    for (const [nodeId, url] of [
      ["n1\r\nOmni-After: 0", "http://n1"],
      ["n1", "http://n1\u0000"],
    ] as const) {
      const error = await rejectionOf(
        JetStreamShardOwnership.open({ servers: NATS_URL, bucket: js.ownersBucket, nodeId, url }),
      );
      expect([error.status, error.code]).toEqual(["invalid-argument", ErrorCodes.resourceLease.optionsInvalid]);
    }
  });
});

describe("an ownership bucket someone else created", () => {
  it("is refused when it expires its keys: another node would take a held shard when its key expires", async () => {
    // Before: with a 1 s max age and a 3 s ownershipTtlMs, a second node took a held shard after ~1.2 s, at epoch 1
    // again (the expired key took its epoch with it).
    const name = `${js.ownersBucket}_AGE`;
    await new Kvm(await js.connection()).create(name, { history: 1, ttl: 1000 });
    const error = await rejectionOf(
      JetStreamShardOwnership.open({
        servers: NATS_URL,
        bucket: name,
        nodeId: "n",
        url: "http://n",
        ownershipTtlMs: 3000,
      }),
    );
    await (await jetstreamManager(await js.connection())).streams.delete(`KV_${name}`);
    expect([error.status, error.code, error.metadata.option]).toEqual([
      "invalid-argument",
      ErrorCodes.resourceLease.optionsInvalid,
      "bucket",
    ]);
  });
});

describe("a log tail someone else wrote", () => {
  it("after a tail that claims event 2^53 - 1, an append is refused with sequence_gap and nothing is stored", async () => {
    const shard = "near-max";
    const n = Number.MAX_SAFE_INTEGER;
    const forged = { sequenceNumber: n, eventType: "Heartbeat" as const, timestamp: 1, metadata: {} };
    const body = new TextEncoder().encode(JSON.stringify([encodeReplicationEvent(forged)]));
    await jetstream(await js.connection()).publish(`${js.subjectPrefix}.${shard}`, body, {
      headers: batchHeaders(n, n),
    });
    const log = await js.open(shard);
    expect(await log.lastSequence()).toBe(n);
    // Before: 2^53 + 1 === 2^53, so the append was stored with headers first 2^53, last 2^53 - 1, and resolved; every
    // later open of the shard failed with data-loss corrupt.
    const error = await rejectionOf(log.publish([{ ...forged, sequenceNumber: n + 1 }]));
    expect([error.status, error.code]).toEqual(["failed-precondition", JetStreamErrorCodes.sequenceGap]);
    await log.close();
    expect(await js.messagesOn(shard)).toBe(1);
    await using reopened = await js.open(shard);
    expect(await collect(reopened.read(1))).toHaveLength(1);
  });

  it("refuses an owner-epoch marker that no reader would accept, and appends nothing", async () => {
    const shard = "bad-marker";
    await using log = await js.open(shard);
    for (const marker of [
      { owner: "n", url: "u", epoch: 0 },
      { owner: "n", url: "u", epoch: 2 ** 53 },
      { owner: "", url: "u", epoch: 1 },
    ]) {
      const error = await rejectionOf(log.appendOwnerMarker(marker));
      expect(error.code).toBe(ErrorCodes.resourceLease.argumentInvalid);
    }
    expect(await js.messagesOn(shard)).toBe(0);
    expect(await log.appendOwnerMarker({ owner: "n", url: "u", epoch: 1 })).toBeGreaterThan(0);
    await using reopened = await JetStreamResourceLeaseEventLog.open(js.options(shard));
    expect(await reopened.lastSequence()).toBe(0);
  });
});

describe("a stream purged or deleted under a read", () => {
  it("ends the read with a coded error instead of waiting for ever", async () => {
    // Before: the ordered consumer waited for the removed messages for ever (still waiting after 20 s, 20 of 200 events
    // read), and so did a queue's open replaying them.
    const deleted = { stream: `${js.stream}_DEL`, subjectPrefix: `${js.subjectPrefix}-del` };
    const cases = [
      { shard: "purged-mid-read", extra: {}, status: "data-loss", code: JetStreamErrorCodes.corrupt },
      { shard: "deleted-mid-read", extra: deleted, status: "unavailable", code: JetStreamErrorCodes.unavailable },
    ];
    for (const { shard, extra, status, code } of cases) {
      const options = js.options(shard, { ...extra, appendTimeoutMs: 500, readBatchMessages: 1 });
      await using log = await JetStreamResourceLeaseEventLog.open(options);
      for (let n = 1; n <= 50; n++) await log.publish([{ ...heartbeat, sequenceNumber: n }]);
      const jsm = await jetstreamManager(await js.connection());
      let read = 0;
      const error = await rejectionOf(
        (async () => {
          for await (const _ of log.read(1)) {
            if (++read !== 5) continue;
            if (shard === "purged-mid-read") await jsm.streams.purge(options.stream!, { filter: log.subject });
            else await jsm.streams.delete(options.stream!);
          }
        })(),
      );
      expect([shard, error.status, error.code]).toEqual([shard, status, code]);
      expect(read).toBeLessThan(50);
    }
  });
});

/** A snapshot head as the store writes it, with the digest of `body`, overridden by `extra`. */
function head(body: Uint8Array, extra: Record<string, unknown> = {}): string {
  const sha256 = createHash("sha256").update(body).digest("hex");
  const value = { format: "omnirelay-snapshot-head/1", lastEventSequence: 1, id: "h1", parts: 1, bytes: body.length };
  return JSON.stringify({ ...value, sha256, ...extra });
}

describe("snapshot heads someone else wrote", () => {
  /** A shard whose log holds three enqueues, its snapshot head replaced by `value` (and a part `<shard>.h1.0`). */
  async function openOver(shard: string, value: string) {
    const first = await openJetStreamResourceLeaseQueue({
      log: js.options(shard),
      snapshotBucket: js.snapshotBucket,
      snapshotEveryEvents: 0,
    });
    await first.queue.enqueueMany([1, 2, 3].map(item));
    await first.close();
    const kv = await bucket(js.snapshotBucket);
    await kv.put(`${shard}.h1.0`, "x");
    await kv.put(shard, value);
    return rejectionOf(openJetStreamResourceLeaseQueue({ log: js.options(shard), snapshotBucket: js.snapshotBucket }));
  }

  it("a head that is not one this package writes is data-loss corrupt, not unavailable", async () => {
    const x = new TextEncoder().encode("x");
    const heads = {
      "junk-text": "garbage{",
      "junk-null": "null",
      "junk-id": head(x, { id: ">" }),
      "junk-bytes-neg": head(x, { bytes: -1 }),
      "junk-bytes-huge": head(x, { bytes: 2 ** 40 }),
      "junk-sequence": head(x, { lastEventSequence: "3" }),
      // Matches its digest, but is no snapshot: before, the JSON parser's SyntaxError was reported as unavailable.
      "junk-body": head(x),
    };
    for (const [shard, value] of Object.entries(heads)) {
      const error = await openOver(shard, value);
      expect([shard, error.status, error.code]).toEqual([shard, "data-loss", JetStreamErrorCodes.corrupt]);
      expect(error.metadata["jetstream.snapshot"]).toMatch(new RegExp(`^${js.snapshotBucket}/${shard}`));
    }
  });

  it("a head past the log's end whose parts are gone is refused, not loaded as no snapshot", async () => {
    // Before: counted as no snapshot; the queue opened, and no later snapshot could replace the head (each must
    // cover more events), so snapshots and trimming stopped for good without an error.
    const shard = "ahead-no-parts";
    const error = await openOver(shard, head(new Uint8Array(10), { lastEventSequence: 2 ** 53 - 1, parts: 2 }));
    expect([error.status, error.code]).toEqual(["data-loss", JetStreamErrorCodes.corrupt]);
    expect(error.message).toContain("log ends at 3");
  });
});
