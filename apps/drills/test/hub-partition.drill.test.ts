import { execFileSync } from "node:child_process";
import { join } from "node:path";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { SqliteDeterministicStateStore, SqliteResourceLeaseReplicator } from "@omnirelay/replicator-sqlite";
import { describe, expect, it } from "vitest";
import { drillCoordinator, storeDigest } from "../src/digest.js";
import { docCommand } from "./doc.js";
import { allCompleted, eventsOf, expectGapFreeSequence, ids, report } from "./events.js";
import { drillLab } from "./lab.js";
import { hubMain, type Line, type Proc, sleep, startChaos, startDrill, startNode, tempDir } from "./procs.js";

const PARTITION_MS = 3_000;
/**
 * The lag SLA: after the heal the hub is back within this many events of the node (about what a connected node shows
 * at this load) within RECOVERY_SLA_MS.
 */
const LAG_SLA_EVENTS = 100;
const RECOVERY_SLA_MS = 5_000;
const ITEMS = 400;
const HUB_PORT = 7500;
const PORT = 7400;

const { lab, dirs } = drillLab();

/** A dispatcher (forwarding to the hub) and a worker on its loopback, both inside namespace `ns`. */
async function node(
  name: string,
  spec: { ns: string; hub: string },
): Promise<{ dispatcher: Proc; worker: Proc; dataDir: string }> {
  const data = tempDir(`hub-${name}`);
  dirs.push(data.remove);
  const dispatcher = await startDrill(name, {
    role: "dispatcher",
    netns: spec.ns,
    config: {
      nodeId: name,
      host: "0.0.0.0",
      port: PORT,
      dataDir: data.path,
      leaseMs: 2_000,
      graceMs: 1_500,
      hub: spec.hub,
    },
  });
  const worker = await startDrill(`${name}-worker`, {
    role: "worker",
    netns: spec.ns,
    config: { peerId: `${name}-worker`, urls: [`http://127.0.0.1:${PORT}`], concurrency: 4, workMs: 5 },
  });
  return { dispatcher, worker, dataDir: data.path };
}

/** Every event the hub stored for `nodeId`, read from its SQLite file (the hub is stopped). */
async function hubCopy(hubDir: string, nodeId: string): Promise<ResourceLeaseReplicationEvent[]> {
  const log = await SqliteResourceLeaseReplicator.open({ path: join(hubDir, `${nodeId}.db`) });
  try {
    const out: ResourceLeaseReplicationEvent[] = [];
    for await (const event of log.read(1)) out.push(event);
    return out;
  } finally {
    await log.close();
  }
}

const EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/** docs/reliability.md's `sqlite3 … | sha256sum` of a deterministic store file. */
function runbookHash(file: string): string {
  const command = docCommand("sqlite3 mesh-data/deterministic.db ").replace("mesh-data/deterministic.db", file);
  return execFileSync("bash", ["-c", command], { encoding: "utf8" }).trim();
}

const lagOf = (proc: Proc, from: number, to = Number.POSITIVE_INFINITY) =>
  proc.of("lag", (l) => l.at >= from && l.at <= to) as Array<Line & { pending: number; connected: boolean }>;

describe("drill: partition between a dispatcher and the replication hub (network namespaces)", () => {
  it("lag rises while cut off and returns under the SLA after; the hub holds every event in order, gap-free; stores match", async () => {
    const startedAt = Date.now();
    const nsHub = lab.namespace();
    const nsA = lab.namespace();
    const nsB = lab.namespace();
    const aToHub = lab.link(nsA, nsHub);
    const bToHub = lab.link(nsB, nsHub);
    const hubDir = tempDir("hub");
    dirs.push(hubDir.remove);
    // Plaintext without identities: the namespaces are a private network that only this drill's processes reach.
    const hub = startNode("hub", {
      netns: nsHub,
      args: [
        hubMain,
        ...["--data-dir", hubDir.path, "--host", "0.0.0.0", "--port", String(HUB_PORT)],
        "--allow-unauthenticated",
      ],
    });
    hub.child.stdin?.end();
    await hub.waitFor((l) => l.t === "listening");
    const a = await node("dispatcher-a", { ns: nsA, hub: `${aToHub.b.ip}:${HUB_PORT}` });
    const b = await node("dispatcher-b", { ns: nsB, hub: `${bToHub.b.ip}:${HUB_PORT}` });
    const loadAt = Date.now();
    for (const n of [a, b]) n.dispatcher.send({ cmd: "load", prefix: "load", count: ITEMS, perTick: 5, tickMs: 50 });
    // Both streams up and acknowledging before the cut.
    for (const n of [a, b])
      await n.dispatcher.waitFor((l) => l.t === "lag" && l.connected === true && (l.acked as number) > 0);
    await sleep(300);

    // The cut, the watch on the node's lag gauge and the rollback are tools/mesh-chaos.sh's (the operator's drill).
    const chaos = startChaos([
      ...["--partition", "grpc", "--netns", nsA, "--dev", aToHub.a.dev, "--for", String(PARTITION_MS / 1000)],
      ...["--metrics-netns", nsA, "--metrics-url", `http://127.0.0.1:${PORT}/drill/metrics`],
      ...["--sla", String(LAG_SLA_EVENTS), "--timeout", String(RECOVERY_SLA_MS / 1000)],
    ]);
    const cutAt = (await chaos.waitFor((l) => l.t === "partitioned")).at;
    const healedAt = (await chaos.waitFor((l) => l.t === "healed", PARTITION_MS + 5_000)).at;
    const back = await a.dispatcher.waitFor(
      (l) => l.t === "lag" && l.at > healedAt && (l.pending as number) <= LAG_SLA_EVENTS,
      RECOVERY_SLA_MS,
    );
    const recoveryMs = back.at - healedAt;
    const verdict = await chaos.waitFor((l) => l.t === "passed" || l.t === "failed", RECOVERY_SLA_MS + 2_000);
    expect(verdict).toMatchObject({ t: "passed", drill: "partition-grpc", sla: LAG_SLA_EVENTS });
    expect(verdict.peak as number).toBeGreaterThan(100);
    expect(verdict.recoveryMs as number).toBeLessThanOrEqual(RECOVERY_SLA_MS);
    expect((await chaos.exited).code).toBe(0);
    const caughtUp = await a.dispatcher.waitFor((l) => l.t === "lag" && l.at > healedAt && l.pending === 0, 10_000);
    const during = lagOf(a.dispatcher, cutAt, healedAt);
    const peakA = Math.max(...during.map((l) => l.pending));
    const duringB = lagOf(b.dispatcher, cutAt, healedAt);
    const peakB = Math.max(...duringB.map((l) => l.pending));
    // The node kept taking work while cut off, so the unacknowledged tail grew; the stream was down.
    expect(peakA).toBeGreaterThan(100);
    expect(during.some((l) => !l.connected)).toBe(true);
    // The other node, never cut off, kept its stream and stayed below.
    expect(duringB.every((l) => l.connected)).toBe(true);
    expect(peakB).toBeLessThan(peakA);

    const all = ids("load", ITEMS);
    for (const n of [a, b]) await allCompleted(n.dispatcher, all, 20_000);
    const doneAt = Date.now();
    for (const n of [a, b])
      await n.dispatcher.waitFor((l) => l.t === "lag" && l.at > Date.now() - 50 && l.pending === 0, 10_000);
    const digests = new Map<string, Line>();
    for (const [name, n] of [
      ["dispatcher-a", a],
      ["dispatcher-b", b],
    ] as const) {
      await n.worker.stop();
      digests.set(name, await n.dispatcher.ask({ cmd: "digest" }, "digest"));
      await n.dispatcher.stop();
    }
    hub.child.kill("SIGTERM");
    await hub.exited;

    for (const [name, n] of [
      ["dispatcher-a", a],
      ["dispatcher-b", b],
    ] as const) {
      const local = eventsOf(n.dispatcher);
      expectGapFreeSequence(local, name);
      const copy = await hubCopy(hubDir.path, name);
      // In order, no gap, nothing twice, nothing missing: the hub's log is the node's log.
      expectGapFreeSequence(
        copy.map((e) => ({ seq: e.sequenceNumber })),
        `hub copy of ${name}`,
      );
      expect(copy.length).toBe(local.length);
      expect(copy.map((e) => `${e.sequenceNumber}:${e.eventType}`)).toEqual(local.map((e) => `${e.seq}:${e.type}`));
      // The deterministic store rebuilt from the hub's copy equals the node's own store, record for record.
      const rebuiltPath = join(hubDir.path, `${name}.rebuilt-deterministic.db`);
      const store = await SqliteDeterministicStateStore.open({ path: rebuiltPath });
      const coordinator = drillCoordinator(store, "drill");
      for (const event of copy) await coordinator.apply(event);
      const rebuilt = await storeDigest(store, { changeId: "drill", lastSequence: copy.length });
      await store.close();
      const own = digests.get(name)!;
      expect(own).toMatchObject({ lastSequence: local.length, recorded: local.length, missing: [] });
      expect(rebuilt.sha256).toBe(own.sha256);
      // …and the runbook's sqlite3 hash says so too.
      const ownHash = runbookHash(join(n.dataDir, "deterministic.db"));
      expect(ownHash).toMatch(/^[0-9a-f]{64} {2}-$/);
      expect(ownHash).not.toContain(EMPTY_SHA256);
      expect(runbookHash(rebuiltPath)).toBe(ownHash);
    }
    report("hub-partition", {
      setupMs: loadAt - startedAt,
      loadDoneMs: doneAt - loadAt,
      partitionMs: PARTITION_MS,
      lagPeakEvents: peakA,
      otherNodeLagPeakEvents: peakB,
      recoveryMs,
      caughtUpMs: caughtUp.at - healedAt,
    });
  });
});
