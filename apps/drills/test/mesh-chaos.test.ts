import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { resolve } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { docCommand, words } from "./doc.js";
import { report } from "./events.js";
import { chaosScript, killAll, type Proc, sleep, startChaos, startNode, tempDir } from "./procs.js";

const demoMain = resolve(import.meta.dirname, "../node_modules/@omnirelay/mesh-demo/dist/main.js");
const GRACE_MS = 1_500;

const dirs: Array<() => void> = [];
afterEach(async () => {
  await killAll();
  for (const remove of dirs.splice(0)) remove();
});

async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const server = createServer();
    server.once("error", rej);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => res(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** Whether process `pid` is gone (or a zombie: it has exited, nobody reaped it yet). */
function gone(pid: number): boolean {
  const stat = `/proc/${pid}/stat`;
  return !existsSync(stat) || / Z /.test(readFileSync(stat, "utf8"));
}

async function peers(httpUrl: string): Promise<Array<{ peerId: string; isHealthy: boolean }>> {
  const res = await fetch(`${httpUrl}/omnirelay/control/lease-health`);
  return ((await res.json()) as { peers: Array<{ peerId: string; isHealthy: boolean }> }).peers;
}

/** `ip netns list`'s lines. */
const namespaces = () => spawnSync("ip", ["netns", "list"], { encoding: "utf8" }).stdout;

/**
 * Starts `npm run demo`'s mesh (`--mesh`, plus `extra`) on free ports with a 3 s lease, a GRACE_MS health grace and a
 * fast seeder, and waits until the dispatcher sees both workers healthy.
 */
async function startDemo(extra: readonly string[] = []) {
  const data = tempDir("demo");
  dirs.push(data.remove);
  const [rpc, http, grpc] = [await freePort(), await freePort(), await freePort()];
  const httpUrl = `http://127.0.0.1:${http}`;
  if (extra.includes("--netns")) {
    // Should the test fail and kill the demo -9, its namespaces and bridge go too (the demo removes them itself only
    // when it stops, or when it starts again on the same port).
    dirs.push(() => {
      for (const line of namespaces().split("\n")) {
        const ns = line.split(" ")[0] ?? "";
        if (ns.startsWith(`ordm${rpc}-`)) spawnSync("ip", ["netns", "del", ns]);
      }
      spawnSync("ip", ["link", "del", `ordm${rpc}`]);
    });
  }
  const demo: Proc = startNode("demo", {
    args: [
      demoMain,
      ...["--mesh", ...extra, "--rpc-url", `http://127.0.0.1:${rpc}`, "--http-url", httpUrl],
      ...["--grpc-url", `http://127.0.0.1:${grpc}`, "--data-dir", data.path, "--lease-duration-ms", "3000"],
      ...["--health-grace-ms", String(GRACE_MS), "--seeder-interval", "100ms", "--work-ms", "50-150"],
    ],
  });
  for (let i = 0; ; i++) {
    const healthy = await peers(httpUrl).catch(() => []);
    if (healthy.filter((p) => p.isHealthy).length === 2) break;
    expect(i, "the demo's two workers never turned healthy").toBeLessThan(200);
    await sleep(100);
  }
  return { demo, rpc, httpUrl };
}

describe("tools/mesh-chaos.sh", () => {
  it("--help prints the usage (exit 0); a bad flag is a usage error (exit 2)", () => {
    // The documented command, as docs/reliability.md shows it.
    const [, ...helpArgs] = words(docCommand("tools/mesh-chaos.sh --help"));
    const help = spawnSync("bash", [chaosScript, ...helpArgs], { encoding: "utf8" });
    expect(help.status).toBe(0);
    for (const flag of [
      "--kill peer",
      "--partition grpc|hub|worker|nats",
      "--netns NS",
      "--dev DEV",
      "--metrics-url",
    ]) {
      expect(help.stdout).toContain(flag);
    }
    const bad = spawnSync("bash", [chaosScript, "--kill", "peer", "--partition", "grpc"], { encoding: "utf8" });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("one drill at a time");
    const noLink = spawnSync("bash", [chaosScript, "--partition", "hub"], { encoding: "utf8" });
    expect(noLink.status).toBe(2);
    expect(noLink.stderr).toContain("--partition hub needs --netns and --dev");
  });

  it("--kill peer against the running demo: the worker dies, turns unhealthy, its leases move, and it is restarted", async () => {
    // Both workers seen alive by the dispatcher before the drill.
    const { demo, rpc, httpUrl } = await startDemo();
    // A worker in the host's namespace cannot be cut alone: refused, saying how to start the demo.
    const refused = spawnSync("bash", [chaosScript, "--partition", "worker", "--rpc-url", `http://127.0.0.1:${rpc}`], {
      encoding: "utf8",
    });
    expect(refused.status).toBe(1);
    expect(JSON.parse(refused.stdout.trim())).toMatchObject({ event: "failed", drill: "partition-worker" });
    expect(refused.stdout).toContain("npm run demo -- --netns");
    // docs/reliability.md's command, pointed at this demo's diagnostics port.
    const [, ...args] = words(docCommand("tools/mesh-chaos.sh --kill peer"));
    expect(args).toContain("--diag-url");
    const documented = args.map((arg) => (arg === "http://127.0.0.1:5158" ? httpUrl : arg));
    // --rpc-url: only this demo's worker, should another mesh run on the machine.
    const chaos = startChaos([...documented, "--rpc-url", `http://127.0.0.1:${rpc}`, "--timeout", "15"]);
    const verdict = await chaos.waitFor((l) => l.t === "passed" || l.t === "failed", 35_000);
    expect(verdict).toMatchObject({ t: "passed", drill: "kill-peer", peer: "mesh-worker-a" });
    expect((await chaos.exited).code).toBe(0);
    const killed = chaos.of("killing")[0]!.pid as number;
    expect(gone(killed)).toBe(true);
    // Unhealthy within one heartbeat window (plus the script's 100 ms polling and a slow machine's slack).
    expect(verdict.detectedMs as number).toBeLessThanOrEqual(GRACE_MS + 1_000);
    expect(verdict.requeuedMs as number).toBeGreaterThanOrEqual(verdict.detectedMs as number);
    const restarted = verdict.restartedPid as number;
    expect(restarted).not.toBe(killed);
    expect((await peers(httpUrl)).find((p) => p.peerId === "mesh-worker-a")?.isHealthy).toBe(true);
    report("kill-peer (mesh-chaos.sh on the demo)", {
      detectedMs: verdict.detectedMs as number,
      requeuedMs: verdict.requeuedMs as number,
      recoveredMs: verdict.recoveredMs as number,
    });
    // The rollback's worker belongs to the demo: it stops when the demo stops.
    demo.child.kill("SIGTERM");
    await demo.exited;
    for (let i = 0; !gone(restarted); i++) {
      expect(i, "the restarted worker outlived the demo").toBeLessThan(100);
      await sleep(100);
    }
  }, 60_000);
});

describe("tools/mesh-chaos.sh --partition against `npm run demo -- --netns`", () => {
  it("cuts the gRPC worker, then the HTTP worker, off the dispatcher: unhealthy, leases moved, back after the heal", async () => {
    const { demo, rpc, httpUrl } = await startDemo(["--netns"]);
    const prefix = `ordm${rpc}-worker-`;
    const bridge = spawnSync("ip", ["-4", "-o", "addr", "show", "dev", `ordm${rpc}`], { encoding: "utf8" }).stdout;
    const bridgeIp = / inet (10\.214\.\d+\.1)\//.exec(bridge)?.[1];
    expect(bridgeIp, bridge).toBeDefined();
    expect(namespaces()).toContain(`${prefix}a`);
    expect(namespaces()).toContain(`${prefix}b`);
    // docs/reliability.md's command, pointed at this demo's diagnostics port, shortened to 5 s.
    const documented = words(docCommand("tools/mesh-chaos.sh --partition worker"))
      .slice(1)
      .map((arg) => (arg === "http://127.0.0.1:5158" ? httpUrl : arg));
    const forAt = documented.indexOf("--for");
    expect(forAt).toBeGreaterThan(0);
    documented[forAt + 1] = "5";
    for (const [link, peer] of [
      ["grpc", "mesh-worker-b"],
      ["worker", "mesh-worker-a"],
    ] as const) {
      const args = documented.map((arg) => (arg === "worker" ? link : arg));
      // --rpc-url as the workers were given it: the bridge's address (the demo prints it).
      const chaos = startChaos([...args, "--rpc-url", `http://${bridgeIp}:${rpc}`, "--timeout", "15"]);
      const verdict = await chaos.waitFor((l) => l.t === "passed" || l.t === "failed", 45_000);
      expect(verdict).toMatchObject({ t: "passed", drill: `partition-${link}`, peer });
      expect((await chaos.exited).code).toBe(0);
      const cut = chaos.of("partitioned")[0]!;
      expect(cut.netns).toBe(`${prefix}${peer.slice(-1)}`);
      // The same process before and after: a partition, not a restart.
      expect(gone(verdict.pid as number)).toBe(false);
      expect(verdict.partitionMs as number).toBeGreaterThanOrEqual(5_000);
      // Unhealthy within the grace plus one lease (grants pushed into the cut session just after the cut count as
      // signs of life until they expire), and its leases expired and moved while the link was down.
      expect(verdict.detectedMs as number).toBeLessThanOrEqual(GRACE_MS + 3_000 + 1_000);
      expect(verdict.requeuedMs as number).toBeLessThanOrEqual(verdict.partitionMs as number);
      // Back: the peer takes work again after the heal.
      for (let i = 0; ; i++) {
        const health = await fetch(`${httpUrl}/omnirelay/control/lease-health`).then((r) => r.json());
        const state = (health as { peers: Array<{ peerId: string; activeAssignments: number }> }).peers.find(
          (p) => p.peerId === peer,
        );
        if ((state?.activeAssignments ?? 0) > 0) break;
        expect(i, `${peer} took no work after the heal`).toBeLessThan(150);
        await sleep(100);
      }
      report(`partition-${link} (mesh-chaos.sh on the demo --netns)`, {
        detectedMs: verdict.detectedMs as number,
        requeuedMs: verdict.requeuedMs as number,
        recoveredMs: verdict.recoveredMs as number,
      });
    }
    // --kill peer restarts a worker of a namespace in the same namespace.
    const killed = startChaos([
      ...["--kill", "peer", "--peer", "mesh-worker-a", "--diag-url", httpUrl],
      ...["--rpc-url", `http://${bridgeIp}:${rpc}`, "--timeout", "15"],
    ]);
    const restart = await killed.waitFor((l) => l.t === "passed" || l.t === "failed", 35_000);
    expect(restart).toMatchObject({ t: "passed", drill: "kill-peer" });
    const where = spawnSync("ip", ["netns", "identify", String(restart.restartedPid)], { encoding: "utf8" });
    expect(where.stdout.trim()).toBe(`${prefix}a`);
    // The namespaces and the bridge go with the demo.
    demo.child.kill("SIGTERM");
    await demo.exited;
    expect(namespaces()).not.toContain(prefix);
    expect(spawnSync("ip", ["link", "show", `ordm${rpc}`], { encoding: "utf8" }).status).not.toBe(0);
  }, 90_000);
});
