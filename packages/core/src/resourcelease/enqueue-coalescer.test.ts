import { afterEach, describe, expect, it } from "vitest";
import type { UnaryOutbound } from "../dispatcher/types.js";
import { isOmniRelayError, type OmniRelayError } from "../errors/omnirelay-error.js";
import { HttpOutbound } from "../transport/http/outbound.js";
import { item, startStack } from "../worker/test-helpers.js";
import { ResourceLeaseClient } from "./client.js";

// Real parts: a queue behind a dispatcher on 127.0.0.1 over HTTP; the outbound is wrapped only to count RPCs.

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function counting(outbound: UnaryOutbound): UnaryOutbound & { bodies: unknown[] } {
  const bodies: unknown[] = [];
  return {
    bodies,
    call(definition, request) {
      // What goes on the wire: the request message as its JSON.
      bodies.push(definition.request.write(request.message, "json"));
      return outbound.call(definition, request);
    },
  };
}

async function setup(capacity?: number) {
  const stack = await startStack(capacity === undefined ? {} : { capacity });
  cleanups.push(() => stack.close());
  const outbound = counting(new HttpOutbound({ url: stack.url }));
  const client = new ResourceLeaseClient({ outbound, caller: "producer", coalesceEnqueues: 100 });
  cleanups.push(() => client.close());
  return { stack, outbound, client };
}

async function settle<T>(promises: Promise<T>[]) {
  const results = await Promise.allSettled(promises);
  return results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as OmniRelayError)));
}

describe("ResourceLeaseClient coalesceEnqueues", () => {
  it("sends the enqueues of one turn as one RPC, each call getting its own sequence id in call order", async () => {
    const { stack, outbound, client } = await setup();
    const results = await Promise.all(Array.from({ length: 250 }, (_, i) => client.enqueue(item(i))));
    expect(results.map((r) => r.sequenceId)).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    expect(results.every((r) => r.duplicate === false && typeof r.stats.pendingCount === "number")).toBe(true);
    // 250 calls at most 100 per batch: three RPCs, not 250.
    expect(outbound.bodies).toHaveLength(3);
    expect(outbound.bodies.map((b) => (b as { payloads: unknown[] }).payloads.length)).toEqual([100, 100, 50]);
    expect(stack.queue.stats().pendingCount).toBe(250);
    // Calls with their own options go alone.
    await client.enqueue(item("alone"), { shardKey: "s" });
    expect(outbound.bodies.at(-1)).toHaveProperty("payload");
  });

  it("fails only the bad item of a refused batch: the rest are enqueued, each answered as if sent alone", async () => {
    const { stack, client } = await setup();
    const calls = [client.enqueue(item(1)), client.enqueue({ ...item(2), resourceId: " " }), client.enqueue(item(3))];
    const [a, bad, c] = await settle(calls);
    expect(a).toMatchObject({ sequenceId: expect.any(Number) });
    expect(c).toMatchObject({ sequenceId: expect.any(Number) });
    expect(isOmniRelayError(bad) && bad.status).toBe("invalid-argument");
    expect(isOmniRelayError(bad) && bad.code).toBe("resourcelease.payload.resource_id_required");
    expect(stack.queue.stats().pendingCount).toBe(2);
  });

  it("past capacity, enqueues as many as fit and refuses the rest with resourcelease.queue.full", async () => {
    const { stack, client } = await setup(5);
    const results = await settle(Array.from({ length: 8 }, (_, i) => client.enqueue(item(i))));
    const ok = results.filter((r) => !isOmniRelayError(r));
    const full = results.filter((r) => isOmniRelayError(r) && r.code === "resourcelease.queue.full");
    expect([ok.length, full.length]).toEqual([5, 3]);
    expect(stack.queue.stats().pendingCount).toBe(5);
  });

  it("rejects every call of a batch the transport could not deliver", async () => {
    const { stack, client } = await setup();
    await stack.close();
    const results = await settle([client.enqueue(item(1)), client.enqueue(item(2))]);
    expect(results.every((r) => isOmniRelayError(r) && r.status === "unavailable")).toBe(true);
  });

  it("close() waits for a batch in flight, and a bad option is refused", async () => {
    const { stack, client } = await setup();
    const pending = [client.enqueue(item(1)), client.enqueue(item(2))];
    await client.close();
    await expect(Promise.all(pending)).resolves.toHaveLength(2);
    expect(stack.queue.stats().pendingCount).toBe(2);
    for (const bad of [-1, 1.5, 1001]) {
      expect(
        () =>
          new ResourceLeaseClient({ outbound: counting(new HttpOutbound({ url: stack.url })), coalesceEnqueues: bad }),
      ).toThrow(
        expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "coalesceEnqueues" } }),
      );
    }
  });
});
