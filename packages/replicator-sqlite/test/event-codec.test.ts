import type { ResourceLeasePendingItem, ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { decodeReplicationEvent, encodeReplicationEvent } from "@omnirelay/core/wire";
import { describe, expect, it } from "vitest";
import { decodeEventBinary, encodeEventBinary } from "../src/event-codec.js";

const token = { sequenceId: 7, attempt: 2, leaseId: "lease-ü", fencingToken: 41 };
const pending: ResourceLeasePendingItem = {
  payload: {
    resourceType: "table",
    resourceId: "r".repeat(300), // a length past one varint byte
    partitionKey: "p",
    payloadEncoding: "json",
    body: new Uint8Array([0, 1, 2, 254, 255]),
    attributes: { tenant: "a", "😀": "x" },
    requestId: "req-1",
    notBefore: 1_800_000_000_999,
    priority: -(2 ** 31),
  },
  sequenceId: 9,
  attempt: 3,
  enqueuedAt: -1000, // before 1970: a log holds it
  lastError: { message: "boom", code: "E1" },
  lastOwnershipToken: token,
  availableAt: 1_800_000_000_123,
};
const written: ResourceLeaseReplicationEvent[] = [
  {
    sequenceNumber: 1,
    eventType: "Enqueue",
    timestamp: 1_700_000_000_000,
    item: pending,
    metadata: { "queue.pending": "1" },
  },
  {
    sequenceNumber: 2,
    eventType: "LeaseGranted",
    timestamp: 1_700_000_000_001,
    ownership: token,
    peerId: "w",
    principal: "svc",
    payload: { resourceType: "t", resourceId: "i", partitionKey: "p", payloadEncoding: "e" },
    error: { message: "" },
    leaseExpiresAt: 1_700_000_060_000,
    metadata: {},
  },
  {
    sequenceNumber: 2 ** 40,
    eventType: "DrainSnapshot",
    timestamp: 0,
    items: [pending, { ...pending, sequenceId: 12, lastError: undefined, availableAt: undefined }],
    metadata: { "drain.count": "2" },
  },
];
// As the JSON envelope reads back (what a JSON row replays to).
const events = written.map((e) => decodeReplicationEvent(JSON.parse(JSON.stringify(encodeReplicationEvent(e)))));

describe("the binary event form", () => {
  it.each(events.map((e) => [e.eventType, e] as const))("round-trips %s exactly as the JSON envelope does", (_, e) => {
    const data = encodeEventBinary(e);
    expect(decodeEventBinary(data)).toEqual(e);
    // Smaller than the JSON text with its base64 body.
    expect(data.length).toBeLessThan(JSON.stringify(encodeReplicationEvent(e)).length);
  });

  it("names the fencing token and the highest item sequence id in its fixed head", () => {
    const [, granted, drained] = events.map((e) => encodeEventBinary(e!));
    expect([granted!.readDoubleLE(18), granted!.readDoubleLE(26)]).toEqual([41, 7]);
    expect([drained!.readDoubleLE(18), drained!.readDoubleLE(26)]).toEqual([0, 12]);
  });

  it("refuses what is cut short, carries trailing bytes, breaks a rule of the log, or disagrees with its head", () => {
    const data = encodeEventBinary(events[0]!);
    expect(() => decodeEventBinary(data.subarray(0, data.length - 1))).toThrow();
    expect(() => decodeEventBinary(Buffer.concat([data, Buffer.from([0])]))).toThrow();
    const unknownFormat = Buffer.from(data);
    unknownFormat[0] = 3;
    expect(() => decodeEventBinary(unknownFormat)).toThrow(/format/);
    const unknownType = Buffer.from(data);
    unknownType[1] = 99;
    expect(() => decodeEventBinary(unknownType)).toThrow(/type/);
    const zeroSequence = Buffer.from(data);
    zeroSequence.writeDoubleLE(0, 2);
    expect(() => decodeEventBinary(zeroSequence)).toThrow(/integer/);
    const fraction = Buffer.from(data);
    fraction.writeDoubleLE(1.5, 10);
    expect(() => decodeEventBinary(fraction)).toThrow(/time/);
    const head = Buffer.from(data);
    head.writeDoubleLE(8, 26);
    expect(() => decodeEventBinary(head)).toThrow(/head/);
    const blank = encodeEventBinary({
      ...events[0]!,
      item: { ...pending, payload: { ...pending.payload, partitionKey: " " } },
    });
    expect(() => decodeEventBinary(blank)).toThrow(/blank/);
  });

  it("carries notBefore and priority behind payload flag bits a version 4 row never sets", () => {
    const plain = { resourceType: "t", resourceId: "i", partitionKey: "p", payloadEncoding: "e" };
    const enqueue = (payload: ResourceLeasePendingItem["payload"]): ResourceLeaseReplicationEvent => ({
      ...events[0]!,
      item: { payload, sequenceId: 1, attempt: 1, enqueuedAt: 5 },
    });
    const v4 = encodeEventBinary(enqueue(plain));
    const v5 = encodeEventBinary(enqueue({ ...plain, notBefore: 7, priority: 2 ** 31 - 1 }));
    // Same row but for the flag byte and the two f64s at the end of the payload.
    expect(v5.length).toBe(v4.length + 16);
    expect(decodeEventBinary(v5).item!.payload).toEqual({ ...plain, notBefore: 7, priority: 2 ** 31 - 1 });
    expect(decodeEventBinary(v4).item!.payload).toEqual(plain);
  });

  it("refuses a priority outside int32, a notBefore outside the Date range and unknown payload flags", () => {
    const plain = { resourceType: "t", resourceId: "i", partitionKey: "p", payloadEncoding: "e" };
    const row = (payload: Record<string, unknown>) =>
      encodeEventBinary({
        ...events[0]!,
        item: { payload: payload as never, sequenceId: 1, attempt: 1, enqueuedAt: 5 },
      });
    expect(() => decodeEventBinary(row({ ...plain, priority: 2 ** 31 }))).toThrow(/priority/);
    expect(() => decodeEventBinary(row({ ...plain, priority: -(2 ** 31) - 1 }))).toThrow(/integer/);
    expect(() => decodeEventBinary(row({ ...plain, priority: 1.5 }))).toThrow(/integer/);
    expect(() => decodeEventBinary(row({ ...plain, notBefore: 8.64e15 + 1 }))).toThrow(/time/);
    expect(() => decodeEventBinary(row({ ...plain, notBefore: Number.NaN }))).toThrow(/time/);
    const unknown = row(plain);
    // The payload's flag byte follows the event head (35 bytes) and the item's own flag byte.
    expect(unknown[36]).toBe(0);
    unknown[36] = 64;
    expect(() => decodeEventBinary(unknown)).toThrow(/payload flags/);
  });

  it("writes short strings byte for byte: ASCII, and text that turns non-ASCII part-way, at the one-byte-length edge", () => {
    const texts = [
      "",
      "a",
      "x".repeat(42),
      "x".repeat(43),
      `${"x".repeat(41)}ü`, // ASCII copied, then written again as UTF-8 from the start
      "€".repeat(42), // 126 bytes: the most a one-byte length holds
      "€".repeat(43),
      `ab${"😀".repeat(10)}`,
      "a\u0000\u007f",
    ];
    for (const text of texts) {
      const e = { ...events[1]!, peerId: text, principal: text, ownership: { ...token, leaseId: text || "l" } };
      expect(decodeEventBinary(encodeEventBinary(e))).toEqual(e);
    }
    // The same UTF-8 as Buffer.from writes: the length byte, then the text.
    const granted = encodeEventBinary({ ...events[1]!, peerId: `${"x".repeat(5)}ü` });
    expect(granted.includes(Buffer.concat([Buffer.from([7]), Buffer.from(`${"x".repeat(5)}ü`)]))).toBe(true);
  });
});
