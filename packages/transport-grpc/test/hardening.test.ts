import { BinaryWriter } from "@bufbuild/protobuf/wire";
import { status as GrpcStatus } from "@grpc/grpc-js";
import { Dispatcher, ResourceLeaseDispatcherComponent, type ResourceLeaseQueueOptions } from "@omnirelay/core";
import { afterEach, describe, expect, it } from "vitest";
import { DrainResponse } from "../src/gen/omnirelay/resourcelease/v1/resourcelease.js";
import { GrpcInbound } from "../src/index.js";
import { type RawAnswer as Answer, Cleanup, rawBytesCaller } from "./harness.js";

// Findings 1, 2 and 7 of the hardening issue over gRPC, with request bytes written by hand, so the tests can send what
// no well-behaved client would: int64 values past 2^53, dates outside the Date range, MiB strings.

async function stack(cleanup: Cleanup, queueOptions: ResourceLeaseQueueOptions = {}) {
  const dispatcher = new Dispatcher({ service: "hardening" });
  const component = cleanup.add(new ResourceLeaseDispatcherComponent(dispatcher, { queueOptions }));
  const inbound = cleanup.add(new GrpcInbound({ dispatcher }));
  const { port } = await inbound.start();
  const { call } = rawBytesCaller(cleanup, port);
  return { component, call };
}

/** ItemPayload (fields 1–7). */
function payload(w: BinaryWriter, id: string, body?: Uint8Array): BinaryWriter {
  w.uint32(10).string("table").uint32(18).string(id).uint32(26).string("p").uint32(34).string("json");
  if (body) w.uint32(42).bytes(body);
  return w;
}

/** RestoreRequest { items: [PendingItem { payload, sequence_id, enqueued_at? }] }. */
function restoreRequest(sequenceId: bigint | number, enqueuedAt?: string): Uint8Array {
  const item = new BinaryWriter();
  item.uint32(10).fork();
  payload(item, "restored");
  item.join();
  item.uint32(16).int64(sequenceId);
  if (enqueuedAt !== undefined) item.uint32(34).string(enqueuedAt);
  return new BinaryWriter().uint32(10).bytes(item.finish()).finish();
}

function enqueueRequest(id: string, body?: Uint8Array): Uint8Array {
  const w = new BinaryWriter().uint32(10).fork();
  payload(w, id, body);
  return w.join().finish();
}

const code = (a: Answer) => a.error?.metadata.get("omnirelay-error-code")[0];
const field = (a: Answer) => a.error?.metadata.get("omnirelay-meta-field")[0];

describe("hardening over gRPC", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.closeAll());

  it("finding 1: a restored id of 2^53-1 or past 2^53 is INVALID_ARGUMENT, never INTERNAL; enqueues go on", async () => {
    const { component, call } = await stack(cleanup);
    for (const id of [2n ** 53n - 1n, 2n ** 52n + 1n, -1n]) {
      const answer = await call("Restore", restoreRequest(id));
      expect(answer.error?.code, `sequence_id ${id}`).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(code(answer)).toBe("resourcelease.argument.invalid");
      expect(field(answer)).toBe("items[0].sequenceId");
    }
    // Past 2^53 a JavaScript number cannot hold the value exactly: the message itself is refused.
    for (const id of [2n ** 53n + 2n, 2n ** 63n - 1n]) {
      const answer = await call("Restore", restoreRequest(id));
      expect(answer.error?.code, `sequence_id ${id}`).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(code(answer)).toBe("omnirelay.request.malformed_protobuf");
    }
    expect((await call("Enqueue", enqueueRequest("after"))).error).toBeUndefined();
    expect(component.queue.stats()).toMatchObject({ pendingCount: 1, lastEventSequence: 1, state: "running" });
  });

  it("finding 2: a restored enqueued_at outside what the log can write is INVALID_ARGUMENT; the queue is not faulted", async () => {
    const { component, call } = await stack(cleanup);
    for (const at of ["+275760-09-13T00:00:00.000Z", "+010000-01-01T00:00:00.000Z", "0000-01-01T00:00:00Z", "0"]) {
      const answer = await call("Restore", restoreRequest(1, at));
      expect(answer.error?.code, at).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(field(answer)).toBe("items[0].enqueuedAt");
    }
    expect(component.queue.stats().state).toBe("running");
    expect((await call("Restore", restoreRequest(1, "9999-12-31T23:59:59.999Z"))).error).toBeUndefined();
  });

  it("finding 7: a MiB-long resource id and a body over maxBodyBytes are refused with the field and the limit", async () => {
    const { component, call } = await stack(cleanup, { maxBodyBytes: 1000 });
    const longId = await call("Enqueue", enqueueRequest("x".repeat(1024 * 1024)));
    expect(longId.error?.code).toBe(GrpcStatus.INVALID_ARGUMENT);
    expect(code(longId)).toBe("resourcelease.payload.invalid");
    expect(field(longId)).toBe("payload.resourceId");
    const big = await call("Enqueue", enqueueRequest("b", new Uint8Array(1001)));
    expect(code(big)).toBe("resourcelease.payload.too_large");
    expect(big.error?.metadata.get("omnirelay-meta-limit")[0]).toBe("1000");
    expect((await call("Enqueue", enqueueRequest("b", new Uint8Array(1000)))).error).toBeUndefined();
    expect(component.queue.stats()).toMatchObject({ pendingCount: 1, bytesHeld: 1000 + 5 + 1 + 1 + 4 });
  });

  it("finding 7: drain answers in pages with the remaining count", async () => {
    const { component, call } = await stack(cleanup, { capacity: 5000 });
    const item = (i: number) => ({
      resourceType: "t",
      resourceId: `i${i}`,
      partitionKey: "p",
      payloadEncoding: "json",
    });
    for (let i = 0; i < 3; i++)
      await component.queue.enqueueMany(Array.from({ length: 1000 }, (_, j) => item(i * 1000 + j)));
    const counts: number[] = [];
    for (;;) {
      const answer = await call("Drain", new Uint8Array());
      expect(answer.error).toBeUndefined();
      const page = DrainResponse.decode(answer.value!);
      expect(page.items.length).toBeGreaterThan(0);
      const remaining = page.remainingCount;
      counts.push(remaining);
      if (remaining === 0) break;
    }
    expect(counts).toEqual([2000, 1000, 0]);
  });

  it("answers a message that is not protobuf at all with INVALID_ARGUMENT, not INTERNAL", async () => {
    const { call } = await stack(cleanup);
    for (const junk of [Uint8Array.of(0xff, 0xff, 0xff), Uint8Array.of(10, 200, 1), Uint8Array.of(16, 0x80)]) {
      const answer = await call("Lease", junk);
      expect(answer.error?.code, Buffer.from(junk).toString("hex")).toBe(GrpcStatus.INVALID_ARGUMENT);
      expect(code(answer)).toBe("omnirelay.request.malformed_protobuf");
    }
  });
});
