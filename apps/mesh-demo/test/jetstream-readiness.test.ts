import { type ChildProcess, spawn } from "node:child_process";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, freePort, getJson, killAll, startDemo, tempDir } from "./helpers.js";

afterEach(killAll);

/** A private nats-server with JetStream on a free port, so the test can take it away. */
async function startNats(port: number, storeDir: string): Promise<ChildProcess> {
  const proc = spawn("nats-server", ["-js", "-a", "127.0.0.1", "-p", String(port), "-sd", storeDir], {
    stdio: "ignore",
  });
  await eventually(async () => {
    const { connect } = await import("node:net");
    return new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
  }, 10_000);
  return proc;
}

interface MeshDoc {
  jetstream: { reachable: boolean; error?: string; sync?: { syncEveryWrite: boolean | "unknown"; source: string } };
  shards: { shard: string; owner: string; servedHere: boolean }[];
}

describe("a JetStream-mode node's /readyz and /demo/mesh", () => {
  it("turn not ready when NATS goes away (the node stops serving its shards) and ready again when it is back", async () => {
    const dir = tempDir();
    const natsPort = await freePort();
    let nats = await startNats(natsPort, `${dir.path}/nats`);
    try {
      const [rpc, http] = [await freePort(), await freePort()];
      const httpUrl = `http://127.0.0.1:${http}`;
      const node = startDemo([
        ...["--roles", "dispatcher,diagnostics", "--log", `jetstream://127.0.0.1:${natsPort}`],
        ...["--rpc-url", `http://127.0.0.1:${rpc}`, "--http-url", httpUrl, "--data-dir", dir.path],
        ...["--shards", "a,b", "--ownership-ttl-ms", "1500", "--node-id", "solo"],
      ]);
      await node.waitForLine(/Dispatcher ready/, 30_000);
      await eventually(async () => {
        const doc = await getJson<MeshDoc>(`${httpUrl}/demo/mesh`);
        return doc.shards.every((s) => s.servedHere && s.owner === "solo");
      });
      expect((await fetch(`${httpUrl}/readyz`)).status).toBe(200);
      // The server's sync setting is reported: this nats-server acknowledges before it fsyncs (no monitor URL given,
      // so only a server before 2.10 can say so; a newer one reports unknown).
      const sync = await eventually(async () => (await getJson<MeshDoc>(`${httpUrl}/demo/mesh`)).jetstream.sync);
      expect(sync.syncEveryWrite).not.toBe(true);
      expect(["server-version", "unknown"]).toContain(sync.source);

      nats.kill("SIGKILL");
      const down = await eventually(async () => {
        const res = await fetch(`${httpUrl}/readyz`);
        const body = await res.text();
        return res.status === 503 && body.includes("is unreachable") && body;
      }, 15_000);
      expect(down).toMatch(/JetStream \(nats:\/\/127\.0\.0\.1:\d+\) is unreachable/);
      const doc = await getJson<MeshDoc>(`${httpUrl}/demo/mesh`);
      expect(doc.jetstream.reachable).toBe(false);
      // Without renewals the node's ownership runs out: it stops serving rather than risk two writers.
      await eventually(async () => {
        const view = await getJson<MeshDoc>(`${httpUrl}/demo/mesh`);
        return view.shards.every((s) => !s.servedHere);
      }, 15_000);

      await sleep(200);
      nats = await startNats(natsPort, `${dir.path}/nats`);
      await eventually(async () => {
        const view = await getJson<MeshDoc>(`${httpUrl}/demo/mesh`);
        return view.jetstream.reachable && view.shards.every((s) => s.servedHere);
      }, 40_000);
      expect((await fetch(`${httpUrl}/readyz`)).status).toBe(200);
      // The placement drops the lost shards once it can read the buckets again, then takes them back.
      const metrics = await (await fetch(`${httpUrl}/metrics`)).text();
      expect(metrics).toMatch(/omnirelay_mesh_ownership_changes_total\{shard="a",change="lost"\} 1\n/);
      expect(metrics).toMatch(/omnirelay_mesh_ownership_changes_total\{shard="a",change="acquired"\} 2\n/);
      expect(metrics).toMatch(/omnirelay_mesh_shard_owned\{shard="a"\} 1\n/);
    } finally {
      nats.kill("SIGKILL");
      dir.remove();
    }
  }, 120_000);
});
