import { status as GrpcStatus, Metadata } from "@grpc/grpc-js";
import { OmniRelayError } from "@omnirelay/core";
import { describe, expect, it } from "vitest";
import {
  decodeMetadataKey,
  decodeTrailerValue,
  encodeMetadataKey,
  encodeTrailerValue,
  fromGrpcError,
  toGrpcStatus,
} from "./status.js";

describe("metadata key escaping", () => {
  it("round-trips keys with capitals, underscores and other characters through the gRPC key alphabet", () => {
    for (const key of [
      "retryAfterMs",
      "field",
      "snake_case",
      "a__b",
      "x.y-z",
      "ÜberKey",
      "items[2]",
      "emoji😀",
      "a-bin",
      "",
    ]) {
      const encoded = encodeMetadataKey(key);
      expect(encoded, key).toMatch(/^[0-9a-z_.-]*$/);
      expect(encoded.endsWith("-bin"), key).toBe(false);
      expect(decodeMetadataKey(encoded), key).toBe(key);
    }
    expect(encodeMetadataKey("retryAfterMs")).toBe("retry_after_ms");
  });

  it("refuses text the encoder cannot have produced", () => {
    expect(decodeMetadataKey("bad_")).toBeUndefined();
    expect(decodeMetadataKey("bad_9")).toBeUndefined();
  });
});

describe("trailer values", () => {
  it("percent-encodes outside printable ASCII and decodes back", () => {
    for (const value of ["plain text", "100% sure", "línea\nnueva", "日本", ""]) {
      const encoded = encodeTrailerValue(value);
      expect(encoded).toMatch(/^[ -~]*$/);
      expect(decodeTrailerValue(encoded)).toBe(value);
    }
    expect(encodeTrailerValue("a%b")).toBe("a%25b");
  });
});

describe("error status", () => {
  it("round-trips status, code, message and metadata through code + trailers", () => {
    const error = new OmniRelayError({
      status: "failed-precondition",
      code: "resourcelease.lease.fenced",
      message: "Lease ended — token is stale.",
      metadata: { retryAfterMs: "250", field: "ownershipToken", note: "ünïcode\n" },
    });
    const status = toGrpcStatus(error);
    expect(status.code).toBe(GrpcStatus.FAILED_PRECONDITION);
    expect(status.metadata.get("omnirelay-status")).toEqual(["FAILED_PRECONDITION"]);
    expect(status.metadata.get("omnirelay-error-code")).toEqual(["resourcelease.lease.fenced"]);
    expect(status.metadata.get("omnirelay-meta-retry_after_ms")).toEqual(["250"]);
    const back = fromGrpcError({ code: status.code, details: status.details, metadata: status.metadata });
    expect(back.toJSON()).toEqual(error.toJSON());
  });

  it("without OmniRelay trailers the code follows the gRPC status", () => {
    const bare = (code: number) => fromGrpcError({ code, details: "x", metadata: new Metadata() });
    expect(bare(GrpcStatus.UNAVAILABLE)).toMatchObject({
      status: "unavailable",
      code: "omnirelay.transport.unavailable",
    });
    expect(bare(GrpcStatus.DEADLINE_EXCEEDED)).toMatchObject({
      status: "deadline-exceeded",
      code: "omnirelay.deadline_exceeded",
    });
    expect(bare(GrpcStatus.CANCELLED)).toMatchObject({ status: "cancelled", code: "omnirelay.cancelled" });
    expect(bare(GrpcStatus.RESOURCE_EXHAUSTED)).toMatchObject({
      status: "resource-exhausted",
      code: "omnirelay.grpc.remote_failed",
      message: "x",
    });
  });

  it("truncates very long messages so the trailers stay under the metadata limit", () => {
    const status = toGrpcStatus(new OmniRelayError({ status: "internal", code: "c", message: "m".repeat(10_000) }));
    expect(status.details.length).toBe(2048);
    expect(String(status.metadata.get("omnirelay-error-message")[0]).length).toBe(2048);
  });
});
