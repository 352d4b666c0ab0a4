import { afterEach, describe, expect, it } from "vitest";
import { allCompleted, completionsById, eventsOf, expectGapFreeSequence, ids, report } from "./events.js";
import { killAll, type Proc, sleep, startDrill, tempDir } from "./procs.js";

const LEASE_MS = 3_000;
/** The heartbeat window: a peer silent this long is unhealthy (workers renew every LEASE_MS / 3). */
const GRACE_MS = 1_500;
const ITEMS = 40;

const dirs: Array<() => void> = [];
afterEach(async () => {
  await killAll();
  for (const remove of dirs.splice(0)) remove();
});

interface HealthPeer {
  peerId: string;
  isHealthy: boolean;
  activeAssignments: number;
  pendingReassignments: number;
}

async function leaseHealth(url: string): Promise<HealthPeer[]> {
  const res = await fetch(`${url}/omnirelay/control/lease-health`, { signal: AbortSignal.timeout(2_000) });
  expect(res.status).toBe(200);
  return ((await res.json()) as { peers: HealthPeer[] }).peers;
}

async function startDispatchers(count: number): Promise<Array<{ proc: Proc; url: string }>> {
  const out: Array<{ proc: Proc; url: string }> = [];
  for (let i = 1; i <= count; i++) {
    const data = tempDir(`peer-loss-d${i}`);
    dirs.push(data.remove);
    const proc = await startDrill(`d${i}`, {
      role: "dispatcher",
      config: { nodeId: `d${i}`, host: "127.0.0.1", port: 0, dataDir: data.path, leaseMs: LEASE_MS, graceMs: GRACE_MS },
    });
    out.push({ proc, url: (await proc.waitFor((l) => l.t === "ready")).url as string });
  }
  return out;
}

describe("drill 1 (seed): peer loss — two dispatcher nodes, three workers, one worker SIGKILLed under load", () => {
  it("marks the peer unhealthy within one heartbeat window; its leases are requeued and finished once by the others", async () => {
    const nodes = await startDispatchers(2);
    const urls = nodes.map((n) => n.url);
    // w3 takes the first items of both nodes and holds them (20 s of "work"): the kill catches it mid-lease.
    const w3 = await startDrill("w3", {
      role: "worker",
      config: { peerId: "w3", urls, concurrency: 2, workMs: 30, slowFirst: 4, slowMs: 20_000 },
    });
    for (const { proc } of nodes) proc.send({ cmd: "load", prefix: "first", count: 2 });
    for (const url of urls) {
      for (const rid of ["first-1", "first-2"])
        await w3.waitFor((l) => l.t === "start" && l.url === url && l.rid === rid);
    }
    const workers = [w3];
    for (const peerId of ["w1", "w2"]) {
      workers.push(await startDrill(peerId, { role: "worker", config: { peerId, urls, concurrency: 2, workMs: 30 } }));
    }
    for (const { proc } of nodes) proc.send({ cmd: "load", prefix: "load", count: ITEMS, perTick: 4, tickMs: 100 });
    // Under load, all three workers healthy on both nodes (the survivors' first polls may take a moment to arrive).
    for (const { url } of nodes) {
      for (let i = 0; ; i++) {
        const healthy = (await leaseHealth(url)).filter((p) => p.isHealthy).map((p) => p.peerId);
        if (healthy.length === 3) {
          expect(healthy.sort()).toEqual(["w1", "w2", "w3"]);
          break;
        }
        expect(i, `healthy on ${url}: ${healthy.join(", ")}`).toBeLessThan(100);
        await sleep(50);
      }
    }
    await sleep(200);

    const killedAt = Date.now();
    w3.kill();
    // Poll each node's control plane: w3 must turn unhealthy there; w1 and w2 must stay healthy all along.
    const detectedMs: number[] = [];
    for (const { url } of nodes) {
      for (;;) {
        const peers = await leaseHealth(url);
        for (const survivor of ["w1", "w2"])
          expect(peers.find((p) => p.peerId === survivor)?.isHealthy, survivor).toBe(true);
        if (peers.find((p) => p.peerId === "w3")?.isHealthy === false) break;
        expect(Date.now() - killedAt, "w3 still healthy").toBeLessThan(GRACE_MS + 1_000);
        await sleep(50);
      }
      detectedMs.push(Date.now() - killedAt);
    }
    const all = [...ids("first", 2), ...ids("load", ITEMS)];
    const doneAt = await Promise.all(nodes.map(({ proc }) => allCompleted(proc, all, 20_000)));

    const figures = { detectedMs: Math.max(...detectedMs), requeuedMs: 0, recoveryMs: 0, events: 0 };
    for (const { proc, url } of nodes) {
      const events = eventsOf(proc);
      expectGapFreeSequence(events, proc.name);
      const completions = completionsById(events);
      expect(completions.size).toBe(all.length);
      for (const id of all) expect(completions.get(id), `${proc.name} ${id}`).toHaveLength(1);
      // w3's two leases on this node: expired (never renewed after the kill), requeued, finished by a survivor.
      for (const rid of ["first-1", "first-2"]) {
        const grant = events.find((e) => e.type === "LeaseGranted" && e.rid === rid)!;
        expect(grant.peer).toBe("w3");
        const expired = events.find((e) => e.type === "LeaseExpired" && e.ft === grant.ft);
        expect(expired, `${proc.name} ${rid} expired`).toBeDefined();
        expect(expired!.ts).toBeGreaterThanOrEqual(killedAt);
        const requeued = events.find((e) => e.type === "Requeued" && e.rid === rid && e.seq > expired!.seq);
        expect(requeued, `${proc.name} ${rid} requeued`).toBeDefined();
        const done = completions.get(rid)![0]!;
        expect(["w1", "w2"]).toContain(done.peer);
        expect(done.seq).toBeGreaterThan(requeued!.seq);
        figures.requeuedMs = Math.max(figures.requeuedMs, expired!.ts - killedAt);
        figures.recoveryMs = Math.max(figures.recoveryMs, done.ts - killedAt);
      }
      expect(events.filter((e) => e.peer === "w3" && e.type === "Completed" && e.ts >= killedAt)).toEqual([]);
      // The deterministic store recorded every event once: one effect per sequence number, none recorded twice.
      const digest = await proc.ask({ cmd: "digest" }, "digest");
      expect(digest).toMatchObject({ lastSequence: events.length, recorded: events.length, missing: [] });
      expect(proc.of("rerecorded")).toEqual([]);
      // Once the work is done, w3 still shows unhealthy and holds nothing.
      const w3Now = (await leaseHealth(url)).find((p) => p.peerId === "w3");
      expect(w3Now).toMatchObject({ isHealthy: false, activeAssignments: 0 });
      figures.events += events.length;
    }
    report("peer-loss", { ...figures, allDoneMs: Math.max(...doneAt) - killedAt });
  });
});
