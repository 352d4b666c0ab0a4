import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FULL_COUNTS, scenarios } from "../src/lib/scenarios.js";

// docs/performance.md is where the benchmark's figures are read: it must keep saying how to reproduce them, on what
// machine, and what every scenario measures.
const page = readFileSync(join(import.meta.dirname, "..", "..", "..", "docs", "performance.md"), "utf8");

describe("docs/performance.md", () => {
  it("keeps its How to reproduce, Setup and Scenarios sections, before the results", () => {
    const headings = [...page.matchAll(/^## (.+)$/gm)].map((m) => m[1] as string);
    const firstResults = headings.findIndex((h) => h.startsWith("Results"));
    expect(firstResults).toBeGreaterThan(0);
    expect(headings.slice(0, firstResults)).toEqual(["How to reproduce", "Setup", "Scenarios"]);
  });

  it("describes every scenario the harness runs in its Scenarios table", () => {
    const section = page.slice(page.indexOf("## Scenarios"), page.indexOf("\n## ", page.indexOf("## Scenarios") + 1));
    const described = [...section.matchAll(/^\| `([^`]+)`(?: \/ `([^`]+)`)? \|/gm)].flatMap((m) => [m[1], m[2]]);
    const named = described.flatMap((d) => {
      const lifecycle = d?.match(/^lifecycle-(c\d+(?:\/c\d+)*)$/);
      return lifecycle ? (lifecycle[1] as string).split("/").map((c) => `lifecycle-${c}`) : [d];
    });
    for (const s of scenarios(FULL_COUNTS)) expect(named, s.id).toContain(s.id);
  });
});
