import { describe, expect, it } from "vitest";
import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import { InMemoryResourceLeaseEventLog } from "./in-memory-event-log.js";
import { makeEvent } from "./test-fixtures.js";

async function collect(iterable: AsyncIterable<ResourceLeaseReplicationEvent>): Promise<number[]> {
  const out: number[] = [];
  for await (const event of iterable) out.push(event.sequenceNumber);
  return out;
}

describe("InMemoryResourceLeaseEventLog", () => {
  it("stores published events and reads them back in order from an offset, with a limit", async () => {
    const log = new InMemoryResourceLeaseEventLog();
    expect(await log.lastSequence()).toBe(0);
    await log.publish([makeEvent(1), makeEvent(2)]);
    await log.publish([makeEvent(3), makeEvent(5)]);
    expect(await log.lastSequence()).toBe(5);
    expect(await collect(log.read(1))).toEqual([1, 2, 3, 5]);
    expect(await collect(log.read(3))).toEqual([3, 5]);
    expect(await collect(log.read(4))).toEqual([5]);
    expect(await collect(log.read(2, 2))).toEqual([2, 3]);
    expect(await collect(log.read(0, 0))).toEqual([]);
    expect(await collect(log.read(6))).toEqual([]);
    const [first] = log.snapshot();
    expect(first?.metadata).toEqual({ "queue.pending": "1" });
  });

  it("rejects a batch with any out-of-order event and appends none of it", async () => {
    const log = new InMemoryResourceLeaseEventLog();
    await log.publish([makeEvent(1)]);
    await expect(log.publish([makeEvent(2), makeEvent(1)])).rejects.toMatchObject({
      code: "resourcelease.replication.out_of_order",
    });
    await expect(log.publish([makeEvent(3), makeEvent(3)])).rejects.toMatchObject({
      code: "resourcelease.replication.out_of_order",
    });
    await expect(log.publish([makeEvent(1)])).rejects.toMatchObject({
      code: "resourcelease.replication.out_of_order",
    });
    expect(log.size).toBe(1);
    expect(await log.lastSequence()).toBe(1);
  });

  it("includes events appended while a reader iterates", async () => {
    const log = new InMemoryResourceLeaseEventLog();
    await log.publish([makeEvent(1)]);
    const seen: number[] = [];
    for await (const event of log.read(1)) {
      seen.push(event.sequenceNumber);
      if (event.sequenceNumber < 3) await log.publish([makeEvent(event.sequenceNumber + 1)]);
    }
    expect(seen).toEqual([1, 2, 3]);
  });

  it("rejects a bad limit and an aborted call", async () => {
    const log = new InMemoryResourceLeaseEventLog();
    expect(() => log.read(1, -1)).toThrowError(expect.objectContaining({ code: "resourcelease.argument.invalid" }));
    await expect(log.publish([makeEvent(1)], { signal: AbortSignal.abort() })).rejects.toMatchObject({
      status: "cancelled",
    });
    expect(log.size).toBe(0);
  });
});
