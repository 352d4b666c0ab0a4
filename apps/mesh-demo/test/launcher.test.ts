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
      const ports = { rpc: await freePort(), http: await freePort(), grpc: await freePort() };
      const args = [
        "--mesh",
        "--data-dir",
        dir.path,
        "--rpc-url",
        `http://127.0.0.1:${ports.rpc}`,
        "--http-url",
        `http://127.0.0.1:${ports.http}`,
        "--grpc-url",
        `http://127.0.0.1:${ports.grpc}`,
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
      expect(first.lines.join("\n")).toContain(`gRPC         http://127.0.0.1:${ports.grpc}`);
      // Both workers apply operations: worker-a over HTTP, worker-b over gRPC.
      const before = await eventually(async () => {
        const state = await getJson<MeshStateDoc & { transports: { caller: string; transport: string }[] }>(
          `${httpUrl}/demo/state`,
        );
        const by = (peer: string) => state.catalogs.recentOperations.filter((o) => o.appliedBy === peer).length;
        return state.catalogs.tableCount >= 5 && by("mesh-worker-a") > 0 && by("mesh-worker-b") > 0 && state;
      });
      const transports = Object.fromEntries(before.transports.map((t) => [t.caller, t.transport]));
      expect(transports).toMatchObject({ "mesh-worker-a": "http", "mesh-worker-b": "grpc", "mesh-seeder": "http" });
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
