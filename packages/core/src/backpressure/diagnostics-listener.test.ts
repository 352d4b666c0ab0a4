import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import type { ResourceLeaseBackpressureSignal } from "../contracts/health.js";
import { FakeClock } from "../testing/fake-clock.js";
import { ResourceLeaseBackpressureController } from "./controller.js";
import { ResourceLeaseBackpressureDiagnosticsListener } from "./diagnostics-listener.js";

const signal = (pendingCount: number, isActive = pendingCount >= 10): ResourceLeaseBackpressureSignal => ({
  isActive,
  pendingCount,
  observedAt: pendingCount,
  highWatermark: 10,
  lowWatermark: 5,
});

async function take(iterator: AsyncIterator<ResourceLeaseBackpressureSignal>, count: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const next = await iterator.next();
    if (next.done) break;
    out.push(next.value.pendingCount);
  }
  return out;
}

describe("ResourceLeaseBackpressureDiagnosticsListener", () => {
  it("rejects a history capacity below 1 and defaults it to 16", () => {
    for (const historyCapacity of [0, -3, 1.5]) {
      expect(() => new ResourceLeaseBackpressureDiagnosticsListener({ historyCapacity })).toThrow(
        expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "historyCapacity" } }),
      );
    }
    expect(new ResourceLeaseBackpressureDiagnosticsListener().historyCapacity).toBe(16);
  });

  it("keeps the latest signal and the last N in order", () => {
    const diag = new ResourceLeaseBackpressureDiagnosticsListener({ historyCapacity: 3 });
    expect(diag.latest).toBeUndefined();
    for (const n of [1, 2, 3, 4, 5]) diag.onBackpressureChanged(signal(n));
    expect(diag.latest?.pendingCount).toBe(5);
    expect(diag.history().map((s) => s.pendingCount)).toEqual([3, 4, 5]);
    diag.history().pop();
    expect(diag.history()).toHaveLength(3);
  });

  it("drops the oldest signal when a slow subscriber's buffer is full", async () => {
    const diag = new ResourceLeaseBackpressureDiagnosticsListener({ historyCapacity: 3 });
    const updates = diag.updates();
    for (const n of [1, 2, 3, 4, 5]) diag.onBackpressureChanged(signal(n));
    diag.close();
    const seen: number[] = [];
    for await (const s of updates) seen.push(s.pendingCount);
    expect(seen).toEqual([3, 4, 5]);
  });

  it("gives each updates() call its own independent stream", async () => {
    const diag = new ResourceLeaseBackpressureDiagnosticsListener();
    diag.onBackpressureChanged(signal(0));
    const a = diag.updates();
    const b = diag.updates();
    diag.onBackpressureChanged(signal(1));
    expect(await take(a, 1)).toEqual([1]);
    diag.onBackpressureChanged(signal(2));
    expect(await take(b, 2)).toEqual([1, 2]);
    expect(await take(a, 1)).toEqual([2]);

    await a.return?.();
    diag.onBackpressureChanged(signal(3));
    expect(await a.next()).toEqual({ done: true, value: undefined });
    expect(await take(b, 1)).toEqual([3]);
  });

  it("wakes a waiting reader when a signal arrives", async () => {
    const diag = new ResourceLeaseBackpressureDiagnosticsListener();
    const updates = diag.updates();
    const next = updates.next();
    diag.onBackpressureChanged(signal(12));
    expect(await next).toEqual({ done: false, value: signal(12) });
  });

  it("ends iteration when the signal aborts and removes its abort listener", async () => {
    const diag = new ResourceLeaseBackpressureDiagnosticsListener();
    const ac = new AbortController();
    const updates = diag.updates({ signal: ac.signal });
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(1);
    const pending = updates.next();
    ac.abort();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
    diag.onBackpressureChanged(signal(1));
    expect(await updates.next()).toEqual({ done: true, value: undefined });
    expect(await diag.updates({ signal: ac.signal }).next()).toEqual({ done: true, value: undefined });
  });

  it("ends waiting readers on close and ends later subscriptions at once", async () => {
    const diag = new ResourceLeaseBackpressureDiagnosticsListener();
    const pending = diag.updates().next();
    diag[Symbol.dispose]();
    expect(await pending).toEqual({ done: true, value: undefined });
    expect(await diag.updates().next()).toEqual({ done: true, value: undefined });
  });

  it("records the controller's transitions", async () => {
    const clock = new FakeClock();
    const diag = new ResourceLeaseBackpressureDiagnosticsListener();
    const controller = new ResourceLeaseBackpressureController({
      highWatermark: 4,
      cooldownMs: 0,
      clock,
      pendingCount: () => 0,
      listeners: [diag],
    });
    const updates = diag.updates();
    controller.observe(4);
    controller.observe(0);
    expect(await take(updates, 2)).toEqual([4, 0]);
    expect(diag.latest).toMatchObject({ isActive: false, highWatermark: 4, lowWatermark: 2 });
    diag.close();
  });
});
