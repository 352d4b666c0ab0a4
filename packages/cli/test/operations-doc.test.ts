import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "./harness.js";
import { cliCommand, runShell, startDispatcherProcess } from "./processes.js";

const doc = readFileSync(join(repoRoot, "docs/guides/operations.md"), "utf8");
const blocks = [...doc.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe("docs/guides/operations.md", () => {
  let dir: string;
  let a: Awaited<ReturnType<typeof startDispatcherProcess>>;
  let b: Awaited<ReturnType<typeof startDispatcherProcess>>;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "omnirelay-ops-doc-"));
    mkdirSync(join(dir, "a"));
    mkdirSync(join(dir, "b"));
    mkdirSync(join(dir, "work"));
    a = await startDispatcherProcess(join(dir, "a"));
    b = await startDispatcherProcess(join(dir, "b"));
    // `omnirelay` on PATH is the built CLI; `./tools` is the repository's tools folder.
    mkdirSync(join(dir, "bin"));
    writeFileSync(join(dir, "bin", "omnirelay"), `#!/usr/bin/env bash\nexec ${cliCommand} "$@"\n`, { mode: 0o755 });
    symlinkSync(join(repoRoot, "tools"), join(dir, "work", "tools"));
  });
  afterAll(() => {
    a?.stop();
    b?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("names every verb of the CLI in a runnable command", () => {
    const commands = blocks.join("\n");
    for (const verb of [
      "enqueue",
      "lease",
      "heartbeat",
      "complete",
      "drain",
      "restore",
      "stats",
      "deadletters",
      "redrive",
      "peers",
    ]) {
      expect(commands, verb).toMatch(new RegExp(`omnirelay .*resourcelease ${verb}\\b`));
    }
  });

  it("every bash block runs, in order, against live dispatcher processes", async () => {
    const provided = { OMNIRELAY_URL: a.url, NODE_B_URL: b.url, RESTART_CMD: a.restartCmd };
    // The doc's `export NAME=…` lines for the variables the test provides are replaced by the live values.
    const script = blocks
      .join("\n")
      .split("\n")
      .filter((line) => !new RegExp(`^export (${Object.keys(provided).join("|")})=`).test(line))
      .join("\n");
    const firstPid = a.pid();
    const run = await runShell(`set -euo pipefail\ncd '${join(dir, "work")}'\n${script}`, {
      ...provided,
      PATH: `${join(dir, "bin")}:${process.env.PATH}`,
    });
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    // The smoke test completed its item; the drain moved sales.refunds to node B; the rollout restarted node A.
    expect(run.stdout).toMatch(/^enqueued sequenceId 1 /m);
    expect(run.stdout).toMatch(/^completed 1$/m);
    expect(run.stdout).toMatch(/^drained 1 item\(s\) from resourcelease into drained\.json$/m);
    expect(run.stdout).toMatch(/^restored 1 item\(s\) into resourcelease \(1 call\(s\)\)$/m);
    expect(run.stdout).toMatch(/^PEER\s+HEALTHY/m);
    expect(run.stderr).toMatch(/rollout: done: 0 item\(s\) moved through the restart/);
    expect(a.pid()).not.toBe(firstPid);
    const client = b.client();
    const bItems = await client.drain();
    await client.close();
    expect(bItems.map((i) => i.payload.resourceId)).toEqual(["sales.refunds"]);
  });
});
