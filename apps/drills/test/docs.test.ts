import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { docCommands, reliabilityDoc, repoRoot, words } from "./doc.js";
import { chaosScript } from "./procs.js";

const doc = reliabilityDoc();
const scripts = (dir: string) =>
  (JSON.parse(readFileSync(resolve(repoRoot, dir, "package.json"), "utf8")) as { scripts: Record<string, string> })
    .scripts;

describe("docs/reliability.md", () => {
  it("has a section, a run command and last-run figures for every drill file of this package, and names no other", () => {
    const files = readdirSync(resolve(import.meta.dirname)).filter((f) => f.endsWith(".drill.test.ts"));
    expect(files.length).toBeGreaterThanOrEqual(4);
    for (const file of files) {
      expect(doc, file).toContain(`apps/drills/test/${file}`);
      expect(docCommands(`pnpm --filter @omnirelay/drills exec vitest run test/${file}`), file).toHaveLength(1);
    }
    for (const [, file] of doc.matchAll(/apps\/drills\/test\/([\w.-]+\.ts)/g)) {
      expect(existsSync(resolve(import.meta.dirname, file as string)), file).toBe(true);
    }
    for (const section of doc.split(/^## Drill: /m).slice(1)) {
      for (const part of ["**What it proves**", "**Run it**", "**Last run**"]) expect(section, part).toContain(part);
    }
    expect(doc).toContain("## Monthly drill runbook");
  });

  it("its pnpm commands name scripts that exist", () => {
    const commands = docCommands("pnpm ");
    expect(commands).toContain("pnpm test:drills");
    // One package at a time: the soak's load floor and the drills' timings need the cores to themselves.
    expect(scripts(".")["test:drills"]).toBe("turbo run test:drills --concurrency=1");
    expect(commands).toContain("pnpm --filter @omnirelay/drills test:drills");
    expect(scripts("apps/drills")["test:drills"]).toBeDefined();
    expect(commands.filter((c) => c.includes("@omnirelay/drills exec vitest run")).length).toBeGreaterThanOrEqual(4);
  });

  it("every drill file its table names is run by its package's test:drills (so by `pnpm test:drills`)", () => {
    const table = doc.slice(0, doc.indexOf("## Running the drills"));
    const files = [...table.matchAll(/`((?:apps|packages)\/[\w-]+)\/(test\/[\w.-]+\.test\.ts)`/g)];
    expect(files.length).toBeGreaterThanOrEqual(10);
    for (const [, dir, file] of files) {
      const script = scripts(dir as string)["test:drills"];
      expect(script, `${dir}/${file}`).toBeDefined();
      const named = words(script as string).filter((w) => w.startsWith("test/"));
      if (named.length > 0) expect(named, `${dir}/${file}`).toContain(file);
    }
  });

  it("its mesh-chaos.sh commands use only flags the script documents, with the values it accepts", () => {
    const help = spawnSync("bash", [chaosScript, "--help"], { encoding: "utf8" }).stdout;
    const commands = docCommands("tools/mesh-chaos.sh ");
    expect(commands.length).toBeGreaterThanOrEqual(3);
    for (const command of commands) {
      for (const flag of words(command).filter((w) => w.startsWith("--"))) expect(help, flag).toContain(flag);
    }
    // The partition example parses and gets as far as looking for its (made-up) device: a usage error would exit 2.
    const partition = commands.find((c) => c.includes("--partition") && c.includes("--netns"))!;
    const run = spawnSync("bash", [chaosScript, ...words(partition).slice(1)], { encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(1);
    expect(JSON.parse(run.stdout.trim())).toMatchObject({
      event: "failed",
      reason: "no device veth-a-hub in namespace or-lab-a",
    });
  });
});
