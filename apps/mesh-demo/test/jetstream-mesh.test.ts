import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { ResourceLeaseClient } from "@omnirelay/core";
import { JetStreamResourceLeaseEventLog } from "@omnirelay/replicator-jetstream";
import { type Browser, chromium } from "playwright-core";
import { afterEach, describe, expect, it } from "vitest";
import { catalogPayload, LakehouseSimulation } from "../src/seeder.js";
import { eventually, getJson, killAll, startDemo, tempDir } from "./helpers.js";

afterEach(killAll);

const NATS = "127.0.0.1:4222";
const TTL_MS = 1_500;
const SHARDS = ["s0", "s1", "s2", "s3", "s4", "s5"];

interface MeshDoc {
  nodeId: string;
  jetstream: { reachable: boolean };
  members: { nodeId: string }[];
  shards: {
    shard: string;
    owner: string;
    placedOn: string;
    epoch: number;
    servedHere: boolean;
    completedHere?: number;
    logLastSequence?: number;
    appliedSequence?: number;
  }[];
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

/** A base port whose next `count` ports are all free. */
async function freeRange(count: number): Promise<number> {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 30_000);
    const ok = await Promise.all(Array.from({ length: count }, (_, i) => bindable(base + i)));
    if (ok.every(Boolean)) return base;
  }
}

/** The stream and buckets of a test's mesh are removed after it. */
async function removeJetStream(prefix: string): Promise<void> {
  const nc = await connect({ servers: NATS });
  const jsm = await jetstreamManager(nc);
  for (const name of [
    `${prefix}_LOG`,
    ...["OWNERS", "MEMBERS", "PINS", "SNAPSHOTS", "DETERMINISTIC"].map((b) => `KV_${prefix}_${b}`),
  ]) {
    await jsm.streams.delete(name).catch(() => undefined);
  }
  await nc.close();
}

/** Sequence ids of the items completed in a shard's JetStream log. */
async function completedInLog(prefix: string, shard: string): Promise<Set<number>> {
  const log = await JetStreamResourceLeaseEventLog.open({
    servers: `nats://${NATS}`,
    shard,
    stream: `${prefix}_LOG`,
    subjectPrefix: `mesh-demo.${prefix}`,
  });
  const done = new Set<number>();
  try {
    for await (const event of log.read(1)) {
      const id = event.ownership?.sequenceId;
      if (event.eventType === "Completed" && id !== undefined) done.add(id);
    }
  } finally {
    await log.close();
  }
  return done;
}

describe("--mesh --log jetstream:// (three dispatcher nodes on the machine's NATS)", () => {
  it("spreads every shard over the nodes, moves a SIGKILLed node's shards within about the TTL, and loses nothing acknowledged", async () => {
    const prefix = `MESHT_${randomBytes(4).toString("hex")}`;
    const dir = tempDir();
    const rpc = await freeRange(3);
    const http = await freeRange(3);
    const httpUrl = (i: number) => `http://127.0.0.1:${http + i}`;
    const rpcUrls = [0, 1, 2].map((i) => `http://127.0.0.1:${rpc + i}`);
    const clients = new Map<string, ResourceLeaseClient>();
    let browser: Browser | undefined;
    try {
      const mesh = startDemo([
        ...["--mesh", "--log", `jetstream://${NATS}`, "--nodes", "3", "--jetstream-prefix", prefix],
        ...["--ownership-ttl-ms", String(TTL_MS), "--shards", SHARDS.join(",")],
        ...["--rpc-url", rpcUrls[0] as string, "--http-url", httpUrl(0), "--data-dir", dir.path],
        ...["--seeder-interval", "100ms", "--work-ms", "5-20", "--lease-duration-ms", "5000"],
      ]);
      await mesh.waitForLine(/Press Ctrl-C to stop/, 60_000);
      const pids = new Map(
        mesh.lines
          .map((l) => /started (\S+) pid=(\d+)/.exec(l))
          .filter((m): m is RegExpExecArray => m !== null)
          .map((m) => [m[1] as string, Number(m[2])]),
      );
      expect([...pids.keys()]).toEqual(["node-1", "node-2", "node-3", "seeder", "worker-a", "worker-b"]);
      const view = (i: number) => getJson<MeshDoc>(`${httpUrl(i)}/demo/mesh`);

      // Every shard owned, by a live member, and served by exactly the node the ownership key names (once the
      // placement settled: at the start the first node takes every shard and hands some over as the others join;
      // a view in which all three see three members can still come before the first node's next rebalance, so
      // settled also means every node's placement names the shard's owner).
      const servedBy = (docs: MeshDoc[], shard: string) =>
        docs.filter((d) => d.shards.find((s) => s.shard === shard)?.servedHere).map((d) => d.nodeId);
      const placed = await eventually(async () => {
        const docs = await Promise.all([0, 1, 2].map(view));
        const settled =
          docs.every((d) => d.members.length === 3) &&
          SHARDS.every((shard) => {
            const owner = docs[0]?.shards.find((s) => s.shard === shard)?.owner;
            const servers = servedBy(docs, shard);
            const agreed = docs.every((d) => d.shards.find((s) => s.shard === shard)?.placedOn === owner);
            return owner !== "" && agreed && servers.length === 1 && servers[0] === owner;
          });
        return settled && docs;
      }, 20_000);
      for (const shard of SHARDS) {
        expect(servedBy(placed, shard)).toEqual([placed[0]?.shards.find((s) => s.shard === shard)?.owner]);
      }
      expect(new Set(placed[0]?.shards.map((s) => s.owner)).size).toBeGreaterThan(1);
      const ready = await fetch(`${httpUrl(1)}/readyz`);
      expect(ready.status).toBe(200);
      expect(placed.every((d) => d.jetstream.reachable)).toBe(true);

      // The test's own items, enqueued over clients that follow the owners; each acknowledged one must complete.
      const simulation = new LakehouseSimulation();
      const acknowledged = new Map<string, number[]>(SHARDS.map((s) => [s, []]));
      for (const shard of SHARDS) {
        clients.set(
          shard,
          new ResourceLeaseClient({ endpoints: rpcUrls, namespace: `resourcelease.mesh.${shard}`, caller: "test" }),
        );
      }
      const enqueueRound = async () => {
        for (const shard of SHARDS) {
          const result = await (clients.get(shard) as ResourceLeaseClient).enqueue(catalogPayload(simulation.next()));
          acknowledged.get(shard)?.push(result.sequenceId);
        }
      };
      const completedSum = async (nodes: number[]) =>
        (await Promise.all(nodes.map(view))).flatMap((d) => d.shards).reduce((n, s) => n + (s.completedHere ?? 0), 0);
      const before = await completedSum([0, 1, 2]);
      await enqueueRound();
      await eventually(async () => (await completedSum([0, 1, 2])) > before + SHARDS.length, 20_000);

      // SIGKILL the node that owns s0.
      const target = placed[0]?.shards.find((s) => s.shard === "s0") as MeshDoc["shards"][number];
      const victim = Number(target.owner.replace("node-", "")) - 1;
      const survivors = [0, 1, 2].filter((i) => i !== victim);
      const movedShards = (placed[0]?.shards ?? []).filter((s) => s.owner === target.owner);
      // The live page of a node that stays: s0's owner now, and (below) its move.
      browser = await chromium.launch({
        executablePath: "/usr/bin/chromium",
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"],
      });
      const page = await browser.newPage();
      await page.goto(`${httpUrl(survivors[0] as number)}/`);
      const s0Owner = page.locator('tr[data-shard="s0"] [data-owner]');
      await s0Owner.waitFor({ timeout: 10_000 });
      expect(await s0Owner.textContent()).toBe(target.owner);
      const killedAt = Date.now();
      process.kill(pids.get(target.owner) as number, "SIGKILL");
      await enqueueRound(); // rides through: the clients follow the shard to its new owner
      const moved = await eventually(async () => {
        const doc = await view(survivors[0] as number);
        const s0 = doc.shards.find((s) => s.shard === "s0");
        return s0 && s0.owner !== "" && s0.owner !== target.owner && doc.members.length === 2 && s0;
      }, 20_000);
      const moveMs = Date.now() - killedAt;
      expect(moved.epoch).toBeGreaterThan(target.epoch);
      // About one TTL after the owner's last renewal, plus a rebalance and the replay (slack for a loaded machine).
      expect(moveMs).toBeLessThan(TTL_MS * 3 + 3_000);
      console.log(`s0 moved from ${target.owner} to ${moved.owner} ${moveMs} ms after SIGKILL (TTL ${TTL_MS} ms)`);
      await eventually(async () => {
        const docs = await Promise.all(survivors.map(view));
        return movedShards.every((m) => docs.some((d) => d.shards.find((s) => s.shard === m.shard)?.servedHere));
      }, 20_000);
      await page.locator("#moves li", { hasText: `s0: ${target.owner} → ${moved.owner}` }).waitFor({ timeout: 10_000 });
      expect(await s0Owner.textContent()).toBe(moved.owner);
      await enqueueRound();

      // Items keep completing on the survivors, and every acknowledged enqueue completes.
      const after = await completedSum(survivors);
      await eventually(async () => (await completedSum(survivors)) > after + SHARDS.length, 20_000);
      await eventually(async () => {
        for (const shard of SHARDS) {
          const done = await completedInLog(prefix, shard);
          if (!(acknowledged.get(shard) ?? []).every((id) => done.has(id))) return false;
        }
        return true;
      }, 30_000);

      // The new owner's follower records s0's log in the shared store from the checkpoint the old owner left: it
      // catches up with the log (applied sequence reaches the log's last sequence as it was a moment ago).
      const ownerIndex = Number(moved.owner.replace("node-", "")) - 1;
      const s0Now = async () =>
        (await view(ownerIndex)).shards.find((s) => s.shard === "s0") as MeshDoc["shards"][number];
      const logAt = (await s0Now()).logLastSequence ?? 0;
      expect(logAt).toBeGreaterThan(0);
      await eventually(async () => ((await s0Now()).appliedSequence ?? 0) >= logAt, 20_000);

      // The new owner counted the acquisition.
      const metrics = await (await fetch(`${httpUrl(ownerIndex)}/metrics`)).text();
      expect(metrics).toMatch(/omnirelay_mesh_ownership_changes_total\{shard="s0",change="acquired"\} [1-9]/);
      expect(metrics).toMatch(/omnirelay_mesh_append_refusals_total\{shard="s0"\} 0/);

      mesh.proc.kill("SIGINT");
      expect((await mesh.exited).code).toBe(0);
    } finally {
      await browser?.close();
      await Promise.all([...clients.values()].map((c) => c.close()));
      dir.remove();
      await removeJetStream(prefix);
    }
  }, 150_000);
});
