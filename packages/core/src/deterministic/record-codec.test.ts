import { describe, expect, it } from "vitest";
import { decodeDeterministicRecord, encodeDeterministicRecord } from "./record-codec.js";

const record = {
  kind: "omnirelay.effect ü",
  version: Number.MAX_SAFE_INTEGER,
  recordedAt: -8.64e15,
  payload: Uint8Array.from([0, 255, 7]),
};

describe("the one-value record codec", () => {
  it("round-trips every field and the writer, and the payload read back is a copy", () => {
    const bytes = encodeDeterministicRecord(record, "w-1");
    const back = decodeDeterministicRecord(bytes);
    expect(back).toEqual({ ...record, writer: "w-1" });
    back!.payload.fill(9);
    expect(decodeDeterministicRecord(bytes)!.payload).toEqual(record.payload);
  });

  it("reads a value inside a larger buffer (a view with an offset)", () => {
    const bytes = encodeDeterministicRecord(record, "w");
    const framed = new Uint8Array(bytes.length + 10);
    framed.set(bytes, 5);
    expect(decodeDeterministicRecord(framed.subarray(5, 5 + bytes.length))).toEqual({ ...record, writer: "w" });
  });

  it("reads a payload cut, extended or flipped as damage (its length and CRC-32 are in the header)", () => {
    const good = encodeDeterministicRecord({ ...record, payload: Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8]) }, "w");
    const flipped = Uint8Array.from(good);
    flipped[flipped.length - 1]! ^= 1;
    for (const damaged of [good.subarray(0, good.length - 5), Uint8Array.from([...good, 9, 9]), flipped]) {
      expect(decodeDeterministicRecord(damaged)).toBeUndefined();
    }
    // A record written before the header held them still reads (nothing to check it against).
    const text = new TextEncoder().encode('{"kind":"k","version":1,"recordedAt":0,"writer":"w"}');
    const older = new Uint8Array(5 + text.length + 2);
    older[0] = 1;
    new DataView(older.buffer).setUint32(1, text.length);
    older.set(text, 5);
    older.set([7, 8], 5 + text.length);
    expect(decodeDeterministicRecord(older)).toEqual({
      kind: "k",
      version: 1,
      recordedAt: 0,
      writer: "w",
      payload: Uint8Array.from([7, 8]),
    });
  });

  it("answers undefined for what it did not write, never throws", () => {
    const good = encodeDeterministicRecord(record, "w");
    const header = (json: string) => {
      const text = new TextEncoder().encode(json);
      const out = new Uint8Array(5 + text.length);
      out[0] = 1;
      new DataView(out.buffer).setUint32(1, text.length);
      out.set(text, 5);
      return out;
    };
    for (const value of [
      new Uint8Array(0),
      Uint8Array.from([2, ...good.subarray(1)]),
      good.subarray(0, 8),
      header("not json"),
      header("null"),
      header('{"kind":" ","version":1,"recordedAt":0,"writer":"w"}'),
      header('{"kind":"k","version":1.5,"recordedAt":0,"writer":"w"}'),
      header('{"kind":"k","version":1,"recordedAt":"0","writer":"w"}'),
      header('{"kind":"k","version":1,"recordedAt":0}'),
    ]) {
      expect(decodeDeterministicRecord(value)).toBeUndefined();
    }
  });
});
