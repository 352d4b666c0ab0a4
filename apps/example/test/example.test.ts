import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);
const main = fileURLToPath(new URL("../dist/main.js", import.meta.url));

describe("the quick-start example", () => {
  it("serves over HTTP, retries a failure, completes every item and rebuilds from its SQLite log", async () => {
    // Its scratch folder for the log goes under TMPDIR and is gone once it exits.
    const tmp = mkdtempSync(join(tmpdir(), "omnirelay-example-test-"));
    const { stdout } = await run(process.execPath, [main, "--items", "4"], { env: { ...process.env, TMPDIR: tmp } });
    expect(readdirSync(tmp)).toEqual([]);
    rmSync(tmp, { recursive: true });
    expect(stdout).toContain("enqueued 4 items");
    expect(stdout).toMatch(/failed sales\.orders_\d+ \(attempt 1\); it will be retried/);
    expect(stdout).toMatch(/completed sales\.orders_\d+ attempt=2/);
    expect(stdout).toContain("completed 4 of 4; pending=0 active=0");
    expect(stdout).toMatch(/restart: rebuilt from \d+ logged events; state matches: true/);
  });

  it("rejects a bad argument with exit code 2", async () => {
    const err = await run(process.execPath, [main, "--items", "zero"]).catch(
      (e: { code: number; stderr: string }) => e,
    );
    expect(err).toMatchObject({ code: 2 });
    expect((err as { stderr: string }).stderr).toContain("--items must be an integer");
  });
});
