import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { encodeReplicationEvent } from "@omnirelay/core/wire";
import { describe, expect, it } from "vitest";
import { FrameAssembler, frameBatch, markerFrame, readFrame, type StoredFrame } from "./frames.js";

const events = (from: number, to: number): ResourceLeaseReplicationEvent[] =>
  Array.from({ length: to - from + 1 }, (_, i) => ({
    sequenceNumber: from + i,
    eventType: "Heartbeat" as const,
    timestamp: 1_700_000_000_000,
    metadata: { text: "é".repeat(40) },
  }));

/** Frames `batch` with parts of at most `maxBody` bytes, as stored from stream sequence `at` on. */
function stored(batch: ResourceLeaseReplicationEvent[], maxBody: number, at: number): StoredFrame[] {
  const texts = batch.map((e) => JSON.stringify(encodeReplicationEvent(e)));
  const range = { first: batch[0]!.sequenceNumber, last: batch.at(-1)!.sequenceNumber };
  return frameBatch(texts, range, maxBody).map((f, i) => ({
    ...f,
    streamSequence: at + i,
    batchStart: f.part > 1 ? at : undefined,
    data: f.body,
  }));
}

describe("frames", () => {
  it("splits a batch at the byte limit (inside multi-byte characters too) and reassembles it", () => {
    const batch = events(1, 20);
    const parts = stored(batch, 97, 10);
    expect(parts.length).toBeGreaterThan(10);
    for (const p of parts) expect(p.data.length).toBeLessThanOrEqual(97);
    const assembler = new FrameAssembler("s");
    const out = parts.map((p) => assembler.push(p));
    expect(out.slice(0, -1).every((o) => o === undefined)).toBe(true);
    expect(out.at(-1)).toEqual(batch);
  });

  it("drops a batch whose parts stop early when the next batch starts, and parts without their first", () => {
    const torn = stored(events(4, 9), 100, 1).slice(0, 2);
    const next = stored(events(4, 5), 10_000, 3);
    const orphan = stored(events(6, 30), 100, 4).slice(1, 3);
    const assembler = new FrameAssembler("s");
    expect(torn.map((p) => assembler.push(p))).toEqual([undefined, undefined]);
    expect(assembler.push(next[0]!)).toEqual(events(4, 5));
    expect(orphan.map((p) => assembler.push(p))).toEqual([undefined, undefined]);
  });

  it("refuses a batch whose events are not the ones its headers announce", () => {
    const [frame] = stored(events(1, 2), 10_000, 1);
    expect(() => new FrameAssembler("s").push({ ...frame!, last: 3 })).toThrow(/announce/);
    expect(() => new FrameAssembler("s").push({ ...frame!, first: 2, last: 3 })).toThrow(/numbered 1, not 2/);
  });

  it("an owner-epoch marker reads back as a frame without events that ends an unfinished batch", () => {
    const marker = markerFrame({ owner: "node-b", url: "http://b:8080", epoch: 7 }, 0);
    const header = new Map(marker.headers);
    const frame = readFrame({ seq: 5, data: marker.body, header: { get: (n) => header.get(n) ?? "" } }, "s");
    expect(frame).toMatchObject({ first: 1, last: 0, marker: { owner: "node-b", url: "http://b:8080", epoch: 7 } });
    const assembler = new FrameAssembler("s");
    const [head] = stored(events(1, 20), 97, 1);
    expect(assembler.push(head!)).toBeUndefined(); // part 1 of many
    expect(assembler.push(frame)).toEqual([]);
    // The batch's later parts no longer fit: it was cut short by the marker.
    const [, second] = stored(events(1, 20), 97, 1);
    expect(assembler.push(second!)).toBeUndefined();
    header.delete("Omni-Owner-Epoch");
    expect(() => readFrame({ seq: 6, data: marker.body, header: { get: (n) => header.get(n) ?? "" } }, "s")).toThrow(
      /owner-epoch marker/,
    );
  });
});
