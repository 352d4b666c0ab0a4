import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../src/config.js";

const guide = readFileSync(resolve(import.meta.dirname, "../../../docs/guides/mesh-demo.md"), "utf8");

describe("docs/guides/mesh-demo.md", () => {
  it("every documented `start --` command line is accepted by the program's own parser", () => {
    const commands = [...guide.matchAll(/^pnpm --filter @omnirelay\/mesh-demo start -- (.+)$/gm)].map(
      (m) => m[1] as string,
    );
    expect(commands.length).toBeGreaterThanOrEqual(4);
    for (const command of commands) {
      const config = parseConfig(command.split(/\s+/), {});
      expect(config.roles.size, command).toBeGreaterThan(0);
    }
  });

  it("every documented `mesh --` command line is accepted by the parser, and the JetStream one starts three nodes", () => {
    const commands = [...guide.matchAll(/^pnpm --filter @omnirelay\/mesh-demo mesh -- (.+)$/gm)].map(
      (m) => m[1] as string,
    );
    expect(commands.length).toBeGreaterThanOrEqual(1);
    const configs = commands.map((command) => parseConfig(["--mesh", ...command.split(/\s+/)], {}));
    expect(configs.every((c) => c.launch)).toBe(true);
    expect(configs.find((c) => c.log.kind === "jetstream")).toMatchObject({ nodes: 3 });
  });

  it("documents every endpoint the diagnostics node serves", () => {
    for (const path of [
      "/demo/lease-health",
      "/demo/backpressure",
      "/demo/replication",
      "/demo/catalogs",
      "/demo/enqueue",
      "/demo/dead-letters",
      "/demo/redrive",
      "/metrics",
      "/demo/mesh",
      "/readyz",
      "omnirelay_mesh_ownership_changes_total",
      "omnirelay_mesh_append_refusals_total",
    ]) {
      expect(guide).toContain(path);
    }
  });
});
