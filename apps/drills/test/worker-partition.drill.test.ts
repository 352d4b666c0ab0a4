import { describe, expect, it } from "vitest";
import { allCompleted, completionsById, eventsOf, expectGapFreeSequence, ids, report } from "./events.js";
import { drillLab } from "./lab.js";
import { startChaos, startDrill, tempDir } from "./procs.js";

const LEASE_MS = 2_000;
const PORT = 7400;
const ITEMS = 30;

const { lab, dirs } = drillLab();

describe("drill: partition between a dispatcher and one of its workers (network namespaces)", () => {
  it("the cut-off worker self-fences before its leases end, its items finish elsewhere once, late completions are refused", async () => {
    const nsD = lab.namespace();
    const nsW1 = lab.namespace();
    const nsW2 = lab.namespace();
    const toW1 = lab.link(nsD, nsW1);
    const toW2 = lab.link(nsD, nsW2);
    const data = tempDir("worker-partition");
    dirs.push(data.remove);
    const dispatcher = await startDrill("dispatcher", {
      role: "dispatcher",
      netns: nsD,
      config: { nodeId: "node-d", host: "0.0.0.0", port: PORT, dataDir: data.path, leaseMs: LEASE_MS, graceMs: 1_500 },
    });
    // w1 holds its first two items for 8 s (renewing them): the partition cuts it off mid-work.
    const w1 = await startDrill("w1", {
      role: "worker",
      netns: nsW1,
      config: {
        peerId: "w1",
        urls: [`http://${toW1.a.ip}:${PORT}`],
        concurrency: 2,
        workMs: 50,
        slowFirst: 2,
        slowMs: 8_000,
      },
    });
    dispatcher.send({ cmd: "load", prefix: "first", count: 2 });
    await w1.waitFor((l) => l.t === "start" && l.rid === "first-2");
    const w2 = await startDrill("w2", {
      role: "worker",
      netns: nsW2,
      config: { peerId: "w2", urls: [`http://${toW2.a.ip}:${PORT}`], concurrency: 2, workMs: 50 },
    });
    dispatcher.send({ cmd: "load", prefix: "load", count: ITEMS, perTick: 3, tickMs: 100 });

    // tools/mesh-chaos.sh cuts w1's link for 3 s (longer than a lease) and brings it back.
    const chaos = startChaos(["--partition", "worker", "--netns", nsD, "--dev", toW1.a.dev, "--for", "3"]);
    const cutAt = (await chaos.waitFor((l) => l.t === "partitioned")).at;
    const held = w1.of("start").map((l) => ({ rid: l.rid as string, ft: l.ft as number }));
    expect(held.map((h) => h.rid).sort()).toEqual(["first-1", "first-2"]);
    const all = [...ids("first", 2), ...ids("load", ITEMS)];
    const doneAt = await allCompleted(dispatcher, all, 20_000);
    const aborts = await Promise.all(held.map((h) => w1.waitFor((l) => l.t === "abort" && l.ft === h.ft, 5_000)));
    expect(await chaos.waitFor((l) => l.t === "passed", 6_000)).toMatchObject({ drill: "partition-worker" });
    expect((await chaos.exited).code).toBe(0);
    const stale = await w1.ask({ cmd: "stale-complete" }, "stale-done");
    expect(stale.count).toBe(2);

    const events = eventsOf(dispatcher);
    expectGapFreeSequence(events, "dispatcher");
    for (const [i, h] of held.entries()) {
      const abort = aborts[i]!;
      const expired = events.find((e) => e.type === "LeaseExpired" && e.ft === h.ft);
      // The server expired w1's lease (it never heard from w1 again)…
      expect(expired, `LeaseExpired for ${h.rid}`).toMatchObject({ peer: "w1", rid: h.rid });
      // …and w1's handler was told to stop before that: its AbortSignal fired while the lease still held.
      expect(abort.code).toBe("resourcelease.lease.expired_locally");
      expect(abort.at).toBeLessThan(expired!.ts);
      expect(abort.at).toBeLessThanOrEqual(abort.exp as number);
      // No completion under w1's token, ever; a late one after the heal is refused and audited.
      expect(events.filter((e) => e.type === "Completed" && e.ft === h.ft)).toEqual([]);
      expect(w1.of("stale", (l) => l.ft === h.ft)).toEqual([
        expect.objectContaining({ ok: false, code: "resourcelease.lease.fenced" }),
      ]);
      expect(events.filter((e) => e.type === "LeaseRefused" && e.ft === h.ft && e.refused === "complete")).toHaveLength(
        1,
      );
    }
    // Every item completed exactly once; w1's two by w2.
    const completions = completionsById(events);
    for (const id of all) expect(completions.get(id), id).toHaveLength(1);
    expect(completions.size).toBe(all.length);
    for (const h of held) expect(completions.get(h.rid)?.[0]?.peer).toBe("w2");
    expect(w2.of("abort")).toEqual([]);

    const expiredAt = Math.max(...held.map((h) => events.find((e) => e.type === "LeaseExpired" && e.ft === h.ft)!.ts));
    const finishedAt = Math.max(...held.map((h) => completions.get(h.rid)![0]!.ts));
    report("worker-partition", {
      abortLeadMs: Math.min(
        ...held.map((h, i) => events.find((e) => e.type === "LeaseExpired" && e.ft === h.ft)!.ts - aborts[i]!.at),
      ),
      expiredAfterCutMs: expiredAt - cutAt,
      recoveryMs: finishedAt - cutAt,
      allDoneAfterCutMs: doneAt - cutAt,
    });
  });
});
