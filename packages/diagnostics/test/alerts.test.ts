import { execFileSync, spawnSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { alertRules, deployDir } from "./promql.js";

const root = resolve(deployDir, "..");

/** Runs promtool in `cwd` (deploy/ by default). */
function promtool(args: string[], cwd = deployDir): { status: number | null; output: string } {
  const run = spawnSync("promtool", args, { cwd, encoding: "utf8" });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

// On a fresh machine promtool comes from Debian's prometheus package, installed by scripts/ensure-promtool.sh.
beforeAll(() => {
  if (spawnSync("promtool", ["--version"]).status !== 0) {
    execFileSync("bash", [join(root, "scripts/ensure-promtool.sh")], { stdio: "inherit" });
  }
}, 300_000);

describe("deploy/alerts.yml", () => {
  it("the guide's promtool commands run from the repository root and succeed", () => {
    const guide = readFileSync(join(root, "docs/guides/diagnostics.md"), "utf8");
    const section = guide.slice(guide.indexOf("## Dashboards and alerts"));
    const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
    expect(block).toContain("promtool test rules deploy/alerts.test.yml");
    const output = execFileSync("bash", ["-c", `set -euo pipefail\n${block}`], { cwd: root, encoding: "utf8" });
    expect(output).toMatch(/SUCCESS: \d+ rules found/);
    expect(output).toMatch(/Unit Testing: {2}deploy\/alerts\.test\.yml\n {2}SUCCESS/);
  });

  it("passes promtool check rules", () => {
    const { status, output } = promtool(["check", "rules", "alerts.yml"]);
    expect(output).toMatch(/SUCCESS: \d+ rules found/);
    expect(status).toBe(0);
  });

  it("passes its promtool unit tests, which make every rule fire at least once", () => {
    const { status, output } = promtool(["test", "rules", "alerts.test.yml"]);
    expect(output).toContain("SUCCESS");
    expect(status).toBe(0);
    const tests = parse(readFileSync(join(deployDir, "alerts.test.yml"), "utf8")) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const fired = new Set(
      tests.tests.flatMap((t) => t.alert_rule_test.filter((a) => a.exp_alerts.length > 0).map((a) => a.alertname)),
    );
    expect([...fired].sort()).toEqual(
      alertRules()
        .map((r) => r.alert)
        .sort(),
    );
  });

  it("the unit tests catch a rule that would not page (a governance threshold raised tenfold)", () => {
    const dir = mkdtempSync(join(tmpdir(), "omnirelay-alerts-"));
    try {
      cpSync(join(deployDir, "alerts.test.yml"), join(dir, "alerts.test.yml"));
      const rules = readFileSync(join(deployDir, "alerts.yml"), "utf8");
      const broken = rules.replace(
        "time() - omnirelay_resourcelease_replication_last_event_timestamp_seconds > 300",
        "time() - omnirelay_resourcelease_replication_last_event_timestamp_seconds > 3000",
      );
      expect(broken).not.toBe(rules);
      writeFileSync(join(dir, "alerts.yml"), broken);
      const { status, output } = promtool(["test", "rules", "alerts.test.yml"], dir);
      expect(status).not.toBe(0);
      expect(output).toContain("ReplicationEventsMissing");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
