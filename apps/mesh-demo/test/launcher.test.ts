import { afterEach, describe, expect, it } from "vitest";
import { eventually, freePort, getJson, killAll, type MeshStateDoc, startDemo, tempDir } from "./helpers.js";

afterEach(killAll);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("--mesh launcher", () => {
  it("starts the mesh as separate processes, stops them all on SIGINT, and keeps the state across a restart", async () => {
    const dir = tempDir();
    try {
      const ports = { rpc: await freePort(), http: await freePort() };
      const args = [
        "--mesh",
        "--data-dir",
        dir.path,
        "--rpc-url",
        `http://127.0.0.1:${ports.rpc}`,
        "--http-url",
        `http://127.0.0.1:${ports.http}`,
        "--seeder-interval",
        "100ms",
        "--work-ms",
        "5-20",
      ];
      const httpUrl = `http://127.0.0.1:${ports.http}`;
      const first = startDemo(args);
      await first.waitForLine(/Press Ctrl-C to stop/);
      const pids = first.lines
        .map((l) => /started (\S+) pid=(\d+)/.exec(l))
        .filter((m): m is RegExpExecArray => m !== null)
        .map((m) => ({ name: m[1], pid: Number(m[2]) }));
      expect(pids.map((p) => p.name)).toEqual(["dispatcher", "seeder", "worker-a", "worker-b"]);
      expect(first.lines.join("\n")).toContain(`live page    ${httpUrl}/`);
      const before = await eventually(async () => {
        const state = await getJson<MeshStateDoc>(`${httpUrl}/demo/state`);
        const peers = state.health.peers.map((p) => p.peerId).sort();
        return (
          state.catalogs.tableCount >= 5 && peers.includes("mesh-worker-a") && peers.includes("mesh-worker-b") && state
        );
      });
      first.proc.kill("SIGINT");
      const exit = await first.exited;
      expect(exit.code).toBe(0);
      expect(pids.filter((p) => alive(p.pid))).toEqual([]);
      expect(first.lines.join("\n")).toContain("[launcher] stopped");

      const second = startDemo(args);
      await second.waitForLine(/OmniRelay mesh is running/);
      const after = await getJson<MeshStateDoc>(`${httpUrl}/demo/state`);
      expect(after.catalogs.tableCount).toBeGreaterThanOrEqual(before.catalogs.tableCount);
      second.proc.kill("SIGTERM");
      expect((await second.exited).code).toBe(0);
    } finally {
      await killAll();
      dir.remove();
    }
  });
});
