import { describe, expect, it } from "vitest";
import { maxDeadlineHorizonMs, parseRfc3339DateTime, readRequestDeadline } from "./deadline-headers.js";

const now = Date.UTC(2026, 0, 1);

describe("parseRfc3339DateTime", () => {
  it("reads RFC 3339 date-times with a zone, fractions and offsets", () => {
    expect(parseRfc3339DateTime("2000-01-01T00:00:00Z")).toBe(Date.UTC(2000, 0, 1));
    expect(parseRfc3339DateTime("2026-03-04t05:06:07.5z")).toBe(Date.UTC(2026, 2, 4, 5, 6, 7, 500));
    expect(parseRfc3339DateTime("2026-03-04T05:06:07.123456789+01:30")).toBe(Date.UTC(2026, 2, 4, 3, 36, 7, 123));
    expect(parseRfc3339DateTime("2026-01-01T00:00:00-00:00")).toBe(Date.UTC(2026, 0, 1));
    expect(parseRfc3339DateTime("2024-02-29T23:59:60Z")).toBe(Date.UTC(2024, 2, 1)); // leap second
    // Not 1950: Date.UTC maps two-digit years to the 1900s.
    expect(parseRfc3339DateTime("0050-06-01T00:00:00Z")).toBe(new Date("0050-06-01T00:00:00.000Z").getTime());
    expect(parseRfc3339DateTime("9999-12-31T23:59:59Z")).toBe(Date.UTC(9999, 11, 31, 23, 59, 59));
  });

  it("refuses everything Date.parse would have guessed at", () => {
    for (const text of [
      "0",
      "42",
      "Dec 25 1999",
      "2026-01-01",
      "2026-01-01T00:00:00", // no zone: local time of whom?
      "2026-01-01 00:00:00Z",
      "2026-1-01T00:00:00Z",
      "+275760-09-13T00:00:00Z",
      "2026-02-29T00:00:00Z",
      "2026-13-01T00:00:00Z",
      "2026-01-01T24:00:00Z",
      "2026-01-01T00:60:00Z",
      "2026-01-01T00:00:00+24:00",
      "2026-01-01T00:00:00.Z",
      "2026-01-01T00:00:00.1234567890Z",
      "Thu, 01 Jan 2026 00:00:00 GMT",
      "",
    ]) {
      expect(parseRfc3339DateTime(text), text).toBeUndefined();
    }
  });
});

describe("readRequestDeadline", () => {
  const read = (headers: Record<string, string>, transportDeadline?: number) =>
    readRequestDeadline(headers, { now, ...(transportDeadline !== undefined ? { transportDeadline } : {}) });

  it("takes the earliest of rpc-ttl-ms, rpc-deadline and the transport deadline", () => {
    expect(read({})).toBeUndefined();
    expect(read({ "rpc-ttl-ms": "1500" })).toBe(now + 1500);
    expect(read({ "rpc-ttl-ms": " 0 " })).toBe(now);
    expect(read({ "rpc-deadline": "2026-01-01T00:00:02Z" })).toBe(now + 2000);
    expect(read({ "rpc-ttl-ms": "5000", "rpc-deadline": "2026-01-01T00:00:02Z" })).toBe(now + 2000);
    expect(read({ "rpc-ttl-ms": "5000" }, now + 700)).toBe(now + 700);
    expect(read({}, now + 700)).toBe(now + 700);
    expect(read({}, Number.POSITIVE_INFINITY)).toBeUndefined();
  });

  it("returns a past deadline as it is, for the deadline middleware to refuse", () => {
    expect(read({ "rpc-deadline": "2000-01-01T00:00:00Z" })).toBe(Date.UTC(2000, 0, 1));
    expect(read({}, now - 1)).toBe(now - 1);
  });

  it("clamps an absurdly far deadline to the horizon instead of refusing it", () => {
    expect(read({ "rpc-ttl-ms": "9".repeat(400) })).toBe(now + maxDeadlineHorizonMs);
    expect(read({ "rpc-ttl-ms": "9999999999" })).toBe(now + maxDeadlineHorizonMs);
    expect(read({ "rpc-deadline": "9999-12-31T23:59:59Z" })).toBe(now + maxDeadlineHorizonMs);
    expect(read({}, now + 10 * maxDeadlineHorizonMs)).toBe(now + maxDeadlineHorizonMs);
    expect(maxDeadlineHorizonMs).toBeLessThan(2 ** 31 - 1); // what a Node timer can wait
  });

  it("refuses a malformed header with invalid_header naming it", () => {
    for (const ttl of ["-5", "1.5", "1e3", "0x10", "", " ", "12 34", "5000, 6000", "٣"]) {
      expect(() => read({ "rpc-ttl-ms": ttl }), ttl).toThrow(
        expect.objectContaining({
          status: "invalid-argument",
          code: "omnirelay.request.invalid_header",
          metadata: { header: "rpc-ttl-ms" },
        }),
      );
    }
    for (const at of ["0", "42", "Dec 25 1999", "2026-01-01"]) {
      expect(() => read({ "rpc-deadline": at }), at).toThrow(
        expect.objectContaining({ code: "omnirelay.request.invalid_header", metadata: { header: "rpc-deadline" } }),
      );
    }
  });
});
