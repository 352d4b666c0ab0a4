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
    for (const flag of [
      "--quick",
      "--reps",
      "--warmup",
      "--only",
      "--without",
      "--durability",
      "--log",
      "--nats-url",
      "--depth",
      "--out",
    ]) {
      expect(stdout).toContain(flag);
    }
    expect(stdout).toContain("bullmq");
    expect(stdout).toContain("process-safe");
    expect(stderr).not.toContain("[rep");
  });

  it("refuses an unknown --log or flag, --nats-url without --log jetstream and a negative --warmup, with exit code 2", async () => {
    for (const [args, message] of [
      [["--log", "kafka"], "--log takes sqlite or jetstream"],
      [["--nats-url", "nats://127.0.0.1:1"], "--nats-url needs --log jetstream"],
      [["--warmup=-1"], "--warmup must be an integer >= 0"],
      [["--bogus"], "Unknown option '--bogus'"],
    ] as const) {
      const error = await run("pnpm", ["bench", "--", ...args], {
        cwd: join(import.meta.dirname, ".."),
        timeout: 30_000,
      }).then(
        () => undefined,
        (e: { code?: number; stderr?: string }) => e,
      );
      expect(error?.code, args.join(" ")).toBe(2);
      expect(error?.stderr).toContain(message);
    }
  });
});
