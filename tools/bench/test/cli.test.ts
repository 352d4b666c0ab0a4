import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

const run = promisify(execFile);

describe("pnpm bench -- --help", () => {
  // Needs the built dist/. Prints the flags and exits before starting any process or database.
  it("prints every flag and exits 0 without running a scenario", async () => {
    const { stdout, stderr } = await run("pnpm", ["bench", "--", "--help"], {
      cwd: join(import.meta.dirname, ".."),
      timeout: 30_000,
    });
    for (const flag of ["--quick", "--reps", "--only", "--without", "--durability", "--depth", "--out"]) {
      expect(stdout).toContain(flag);
    }
    expect(stdout).toContain("bullmq");
    expect(stdout).toContain("process-safe");
    expect(stderr).not.toContain("[rep");
  });
});
