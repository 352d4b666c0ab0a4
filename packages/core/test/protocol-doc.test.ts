import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer } from "./http-helpers.js";

const run = promisify(execFile);
const doc = readFileSync(fileURLToPath(new URL("../../../docs/protocol.md", import.meta.url)), "utf8");

/** The doc's examples: each ```bash block and the ```json / ```text block that shows its output. */
function examples(): Array<{ command: string; kind: "json" | "text"; expected: string }> {
  const blocks = [...doc.matchAll(/```(bash|json|text)\n([\s\S]*?)```/g)].map((m) => ({ lang: m[1]!, body: m[2]! }));
  const out: Array<{ command: string; kind: "json" | "text"; expected: string }> = [];
  for (let i = 0; i < blocks.length - 1; i++) {
    const b = blocks[i]!;
    const next = blocks[i + 1]!;
    if (b.lang === "bash" && next.lang !== "bash")
      out.push({ command: b.body, kind: next.lang as "json" | "text", expected: next.body.trim() });
  }
  return out;
}

/** Deep match where an expected string like "<time>" matches any value. */
function matches(actual: unknown, expected: unknown): boolean {
  if (typeof expected === "string" && /^<[a-z]+>$/.test(expected)) return actual !== undefined;
  if (Array.isArray(expected)) {
    return (
      Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => matches(actual[i], e))
    );
  }
  if (expected && typeof expected === "object") {
    if (!actual || typeof actual !== "object") return false;
    const a = actual as Record<string, unknown>;
    const e = expected as Record<string, unknown>;
    const keys = new Set([...Object.keys(a), ...Object.keys(e)]);
    return [...keys].every((k) => matches(a[k], e[k]));
  }
  return actual === expected;
}

describe("docs/protocol.md", () => {
  let server: Awaited<ReturnType<typeof startServer>>;
  beforeAll(async () => {
    server = await startServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it("every curl example gives the output the doc shows", async () => {
    const list = examples();
    expect(list.length).toBeGreaterThanOrEqual(7);
    const marker = "----omnirelay-doc-example----";
    const script = ["set -euo pipefail", ...list.flatMap((e) => [e.command, `echo; echo ${marker}`])].join("\n");
    const { stdout } = await run("bash", ["-c", script], { env: { ...process.env, OMNIRELAY_URL: server.url } });
    const outputs = stdout.split(marker).map((s) => s.trim());
    list.forEach((example, i) => {
      const actual = outputs[i] ?? "";
      if (example.kind === "text") {
        expect(actual, example.command).toBe(example.expected);
      } else {
        const parsed = JSON.parse(actual);
        expect(matches(parsed, JSON.parse(example.expected)), `${example.command}\n=> ${actual}`).toBe(true);
      }
    });
  });
});
