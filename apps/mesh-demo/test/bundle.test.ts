import { execFileSync, spawn } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, symlinkSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { eventually, freePort, tempDir } from "./helpers.js";

const app = resolve(import.meta.dirname, "..");

// deploy/Dockerfile builds the container's single file with tsup.bundle.config.ts: the same build, run for real.
describe("the container's bundle", () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  it("is the build the Dockerfile runs, and serves the dispatcher with only better-sqlite3 beside it", async () => {
    const dockerfile = readFileSync(resolve(app, "../../deploy/Dockerfile"), "utf8");
    expect(dockerfile).toContain("BUNDLE_OUT_DIR=/out pnpm exec tsup --config tsup.bundle.config.ts");
    const out = join(dir.path, "app");
    execFileSync("pnpm", ["exec", "tsup", "--config", "tsup.bundle.config.ts"], {
      cwd: app,
      env: { ...process.env, BUNDLE_OUT_DIR: out },
      stdio: "pipe",
    });
    cpSync(join(app, "src/page.html"), join(out, "page.html"));
    // The image copies better-sqlite3 next to the bundle; here a link to the workspace's copy stands in for it.
    const sqlite = createRequire(resolve(app, "../../packages/replicator-sqlite/package.json"));
    mkdirSync(join(out, "node_modules"));
    symlinkSync(dirname(sqlite.resolve("better-sqlite3/package.json")), join(out, "node_modules/better-sqlite3"));
    const [rpc, http] = [await freePort(), await freePort()];
    const child = spawn(
      process.execPath,
      [
        "main.js",
        "--roles",
        "dispatcher,diagnostics",
        "--rpc-url",
        `http://127.0.0.1:${rpc}`,
        "--http-url",
        `http://127.0.0.1:${http}`,
      ],
      { cwd: out, env: { ...process.env, MESH_DEMO_DATA_DIR: join(dir.path, "data") }, stdio: "ignore" },
    );
    try {
      const stats = await eventually(async () => {
        const res = await fetch(`http://127.0.0.1:${http}/demo/state`).catch(() => undefined);
        return res?.ok ? ((await res.json()) as Record<string, unknown>) : undefined;
      });
      expect(stats).toHaveProperty("transports");
      const enqueue = await fetch(`http://127.0.0.1:${rpc}/healthz`);
      expect(enqueue.status).toBe(200);
    } finally {
      child.kill("SIGTERM");
    }
  }, 60_000);
});
