import { describe, expect, it } from "vitest";
import { isOmniRelayError, OmniRelayError } from "./omnirelay-error.js";
import { parseStatus, statusInfo, statusTable } from "./status.js";

describe("the status table", () => {
  it("maps statuses to the HTTP codes of DESIGN.md §4", () => {
    const http = Object.fromEntries([...statusTable.values()].map((i) => [i.wireName, i.httpStatus]));
    expect(http).toMatchObject({
      INVALID_ARGUMENT: 400,
      UNAUTHENTICATED: 401,
      PERMISSION_DENIED: 403,
      NOT_FOUND: 404,
      ALREADY_EXISTS: 409,
      ABORTED: 409,
      FAILED_PRECONDITION: 412,
      RESOURCE_EXHAUSTED: 429,
      UNIMPLEMENTED: 501,
      UNAVAILABLE: 503,
      DEADLINE_EXCEEDED: 504,
      INTERNAL: 500,
    });
  });

  it("is a bijection between statuses, wire names and gRPC codes", () => {
    const infos = [...statusTable.values()];
    expect(new Set(infos.map((i) => i.grpcCode)).size).toBe(infos.length);
    expect(new Set(infos.map((i) => i.wireName)).size).toBe(infos.length);
    for (const info of infos) {
      expect(parseStatus(info.wireName)).toBe(info.status);
      expect(parseStatus(info.grpcCode)).toBe(info.status);
      expect(parseStatus(info.status)).toBe(info.status);
      expect(statusInfo(info.status)).toBe(info);
    }
    expect(parseStatus("no-such-status")).toBeUndefined();
  });
});

describe("OmniRelayError", () => {
  it("is recognised across package copies by its Symbol.for marker", () => {
    const err = new OmniRelayError({ status: "not-found", code: "x.y", message: "m" });
    expect(isOmniRelayError(err)).toBe(true);
    const foreign = Object.assign(new Error("m"), { [Symbol.for("@omnirelay/core/OmniRelayError")]: true });
    expect(isOmniRelayError(foreign)).toBe(true);
    expect(isOmniRelayError(new Error("plain"))).toBe(false);
  });

  it("normalises anything thrown and round-trips its wire form", () => {
    const abort = OmniRelayError.from(Object.assign(new Error("stop"), { name: "AbortError" }));
    expect(abort.status).toBe("cancelled");
    const timeout = OmniRelayError.from(Object.assign(new Error("late"), { name: "TimeoutError" }));
    expect(timeout.status).toBe("deadline-exceeded");
    const other = OmniRelayError.from("boom");
    expect(other).toMatchObject({ status: "internal", code: "omnirelay.internal", message: "boom" });
    const original = new OmniRelayError({
      status: "failed-precondition",
      code: "resourcelease.lease.fenced",
      message: "m",
      metadata: { a: "1" },
    });
    const wire = JSON.parse(JSON.stringify(original));
    expect(OmniRelayError.fromWire({ ...wire, status: "FAILED_PRECONDITION" }).toJSON()).toEqual(original.toJSON());
  });
});
