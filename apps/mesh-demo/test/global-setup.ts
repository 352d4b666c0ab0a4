import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";

/**
 * Builds dist/main.js (the tests run the demo as processes) and makes sure a Chromium is installed. The build is skipped
 * when `MESH_DEMO_PREBUILT=1` says it was just made: scripts/test.mjs builds once and then runs two vitest processes side by
 * side, and a second build (tsup cleans dist/) must not run under the soak's process.
 */
export default function setup(): void {
  const root = resolve(import.meta.dirname, "..");
  if (process.env.MESH_DEMO_PREBUILT !== "1")
    execFileSync(process.execPath, [findTsup(root)], { cwd: root, stdio: "ignore" });
  if (!existsSync("/usr/bin/chromium")) installChromium();
}

function findTsup(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    const cli = join(dir, "node_modules", "tsup", "dist", "cli-default.js");
    if (existsSync(cli)) return cli;
    if (dirname(dir) === dir) throw new Error("tsup is not installed");
  }
}

function installChromium(): void {
  const uid = process.getuid?.();
  if (uid !== 0) {
    throw new Error("/usr/bin/chromium is missing and the tests are not root: run `apt-get install -y chromium`.");
  }
  const started = Date.now();
  execFileSync("apt-get", ["update"], { stdio: "ignore" });
  execFileSync("apt-get", ["install", "-y", "--no-install-recommends", "chromium"], {
    stdio: "ignore",
    env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
  });
  console.log(`installed chromium in ${Math.round((Date.now() - started) / 1000)} s`);
}
