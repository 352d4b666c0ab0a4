// The per-event cost of the hash chain: hashReplicationEvent (canonical bytes + SHA-256 + base64url) beside JSON-encoding
// the envelope once (what every JSON sink does per event). Best of 40 runs of 10,000 events each, so bursts of other
// load on the machine do not count. Run after building core: node packages/core/bench/event-hash.mjs

import { hash } from "node:crypto";
import { canonicalEventBytes, encodeReplicationEvent, hashReplicationEvent } from "../dist/wire.js";

const mk = (i, bodyBytes) => ({
  sequenceNumber: i,
  eventType: "Enqueue",
  timestamp: 1_700_000_000_000 + i,
  peerId: "peer-1",
  previousHash: "AAAAAAAAAAAAAAAAAAAAAA",
  item: {
    payload: {
      resourceType: "invoice",
      resourceId: `inv-${i}`,
      partitionKey: "tenant-1",
      payloadEncoding: "json",
      body: Buffer.alloc(bodyBytes, 7),
      requestId: `req-${i}`,
    },
    sequenceId: i,
    attempt: 1,
    enqueuedAt: 1_700_000_000_000,
  },
  metadata: { "queue.pending": String(i), "queue.active": "3" },
});
const hb = (i) => ({
  sequenceNumber: i,
  eventType: "Heartbeat",
  timestamp: 1_700_000_000_000 + i,
  peerId: "peer-1",
  previousHash: "AAAAAAAAAAAAAAAAAAAAAA",
  ownership: { sequenceId: i, attempt: 1, leaseId: "0b2c3d4e-aaaa-bbbb-cccc-1234567890ab", fencingToken: i },
  leaseExpiresAt: 1_700_000_030_000,
  metadata: { "queue.pending": String(i), "queue.active": "3" },
});
function minTime(evs, fn) {
  let best = Infinity;
  for (let r = 0; r < 40; r++) {
    const n = 10_000;
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) fn(evs[i % 1000]);
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best.toFixed(0);
}
for (const [label, evs] of [
  ["Enqueue, 200-byte body", Array.from({ length: 1000 }, (_, i) => mk(i + 1, 200))],
  ["Enqueue, 4 KiB body", Array.from({ length: 1000 }, (_, i) => mk(i + 1, 4096))],
  ["Heartbeat", Array.from({ length: 1000 }, (_, i) => hb(i + 1))],
]) {
  const b = Buffer.from(canonicalEventBytes(evs[0]));
  console.log(
    label.padEnd(24),
    "hash",
    minTime(evs, hashReplicationEvent),
    "ns | canonical",
    minTime(evs, canonicalEventBytes),
    "| sha256",
    minTime(evs, () => hash("sha256", b, "buffer")),
    `(${b.length} B) | JSON envelope`,
    minTime(evs, (e) => JSON.stringify(encodeReplicationEvent(e))),
  );
}
