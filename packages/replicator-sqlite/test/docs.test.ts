import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { here } from "./drill-helpers.js";

const run = promisify(execFile);
const root = join(here, "..", "..", "..");
const guide = readFileSync(join(root, "docs", "guides", "sqlite-replication.md"), "utf8");
const commands = [...guide.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());

describe("docs/guides/sqlite-replication.md", () => {
  it("has shell commands to run", () => {
    expect(commands.length).toBeGreaterThan(0);
  });

  it.each(commands)(
    "runs `%s` from the repository root",
    async (command) => {
      const { stdout } = await run("bash", ["-euo", "pipefail", "-c", command], { cwd: root, timeout: 60_000 });
      expect(stdout).toContain("eventsPerSecond");
    },
    60_000,
  );
});
