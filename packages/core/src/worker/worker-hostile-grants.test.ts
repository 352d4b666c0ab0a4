import { describe, expect, it } from "vitest";
import type { ResourceLeaseGrant } from "../contracts/payload.js";
import { hostileHarness, okAnswer, sleep, until, wireGrant } from "./test-hostile-server.js";

// A dispatcher that grants one lease twice (in one answer or frame), or grants an item again under another lease while
// its handler runs: one item never has two handlers at once, and a duplicate is neither run nor settled.

const h = hostileHarness();

/** A handler that records how many handlers run per item, at most, and how often each lease ran. */
function recorder(holdMs: number) {
  const runs = new Map<string, number>();
  const running = new Map<number, number>();
  let maxPerItem = 0;
  const handler = async (grant: ResourceLeaseGrant) => {
    const t = grant.ownershipToken;
    const key = `${t.sequenceId}/${t.leaseId}/${t.fencingToken}`;
    runs.set(key, (runs.get(key) ?? 0) + 1);
    running.set(t.sequenceId, (running.get(t.sequenceId) ?? 0) + 1);
    maxPerItem = Math.max(maxPerItem, running.get(t.sequenceId)!);
    await sleep(holdMs);
    running.set(t.sequenceId, running.get(t.sequenceId)! - 1);
  };
  return { handler, runs, maxPerItem: () => maxPerItem };
}

describe("ResourceLeaseWorker against a dispatcher that grants a lease twice", () => {
  it("unary: runs the handler once for a lease answered twice in one lease call, and completes it once", async () => {
    let leased = false;
    const server = await h.server({
      unary: (call) => {
        if (call.verb !== "lease") return okAnswer(call);
        if (leased) return { items: [] };
        leased = true;
        const g = wireGrant(7);
        return { items: [g, g] };
      },
    });
    const r = recorder(100);
    const { worker } = h.worker(server.url, { handler: r.handler, concurrency: 4, leaseWaitMs: 0, session: false });
    await until(() => worker.stats().completed >= 1);
    await sleep(50);
    expect(Object.fromEntries(r.runs)).toEqual({ "7/l7/7": 1 });
    expect(r.maxPerItem()).toBe(1);
    // Settled once: one completion, and no fail sent under the live lease's token on the duplicate's behalf.
    const completed = server.calls.filter((c) => c.verb === "complete");
    expect(completed.flatMap((c) => c.body.ownershipTokens as unknown[])).toHaveLength(1);
    expect(server.calls.filter((c) => c.verb === "fail")).toEqual([]);
    expect(worker.stats()).toMatchObject({ leased: 1, completed: 1, failed: 0 });
  });

  it("session: runs the handler once for a grant sent twice in one frame, and again in a later frame", async () => {
    const server = await h.server({
      session: (ws, frames) => {
        let sent = 0;
        ws.on("message", () => {
          const f = frames.at(-1)!;
          if (f.credit && sent++ === 0) {
            const g = wireGrant(7);
            ws.send(JSON.stringify({ grants: [g, g] }));
            setTimeout(() => ws.send(JSON.stringify({ grants: [g] })), 30);
          }
          const done = (f.complete as Array<{ id: number }> | undefined) ?? [];
          if (done.length > 0) ws.send(JSON.stringify({ results: done.map((o) => ({ id: o.id })) }));
        });
      },
    });
    const r = recorder(150);
    const { worker } = h.worker(server.url, { handler: r.handler, concurrency: 4 });
    await until(() => worker.stats().completed >= 1);
    await sleep(50);
    expect(Object.fromEntries(r.runs)).toEqual({ "7/l7/7": 1 });
    expect(r.maxPerItem()).toBe(1);
    expect(worker.stats()).toMatchObject({ leased: 1, completed: 1, failed: 0 });
  });

  it("hands back a grant of an item whose handler runs under another lease, never running both at once", async () => {
    let leases = 0;
    const server = await h.server({
      unary: (call) => {
        if (call.verb !== "lease") return okAnswer(call);
        leases++;
        if (leases === 1) return { items: [wireGrant(9)] };
        // The same item again, under another lease, while the first handler still runs.
        if (leases === 2) return { items: [wireGrant(9, { leaseId: "l9b", fencingToken: 10 })] };
        return { items: [] };
      },
    });
    const r = recorder(300);
    const { worker } = h.worker(server.url, { handler: r.handler, concurrency: 4, leaseWaitMs: 0, session: false });
    await until(() => worker.stats().completed >= 1);
    await sleep(50);
    expect(Object.fromEntries(r.runs)).toEqual({ "9/l9/9": 1 });
    expect(r.maxPerItem()).toBe(1);
    // Handed back at once, under its own token: the dispatcher offers the item again.
    const fails = server.calls.filter((c) => c.verb === "fail");
    expect(fails).toHaveLength(1);
    expect(fails[0]!.body).toMatchObject({
      ownershipToken: { sequenceId: 9, leaseId: "l9b", fencingToken: 10 },
      requeue: true,
      delayMs: 0,
    });
  });
});
