import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { markedBlocks, readGuide, repoRoot, writeCodeBlocks } from "../src/extract.js";

function bash(script: string, cwd: string) {
  // No BASH_ENV: a startup file of the machine must not run before the guide's commands.
  const { BASH_ENV: _ignored, ...env } = process.env;
  const r = spawnSync("bash", ["-e", "-c", script], { cwd, encoding: "utf8", env: { ...env, OMNIRELAY: repoRoot } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe("docs/guides/migrating-from-tablelease.md", () => {
  const blocks = markedBlocks(readGuide("migrating-from-tablelease.md"));
  const dir = mkdtempSync(join(tmpdir(), "tablelease-guide-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("its commands print what the guide shows, and leave the files it shows", () => {
    writeCodeBlocks(blocks, dir);
    let last: ReturnType<typeof bash> | undefined;
    let commands = 0;
    let outputs = 0;
    for (const block of blocks) {
      if (block.kind === "run-by-test" && block.target === "commands") {
        last = bash(block.code, dir);
        expect(last.stderr).toBe("");
        // The codemod exits 0; the lint exits 1 while it has findings.
        expect(last.code).toBe(/finding\(s\) in/.test(last.stdout) ? 1 : 0);
        commands++;
      } else if (block.kind === "expected-output" && block.target === "") {
        expect(last, `line ${block.line}: expected output without a command before it`).toBeDefined();
        expect(last!.stdout).toBe(block.code);
        outputs++;
      } else if (block.kind === "expected-output") {
        expect(readFileSync(join(dir, block.target), "utf8")).toBe(block.code);
        outputs++;
      }
    }
    expect(commands).toBe(3);
    expect(outputs).toBe(4);
  });

  it("the lint is clean, exit 0, once the guide's hand fixes are made", () => {
    const client = join(dir, "my-service/src/catalog-client.ts");
    const text = readFileSync(client, "utf8");
    const oldLabel = ["return `$", "{payload.namespace}.$", "{payload.table}`;"].join(""); // the read the lint reported
    expect(text).toContain(oldLabel);
    writeFileSync(client, text.replace(oldLabel, "return payload.resourceId;"));
    unlinkSync(join(dir, "my-service/src/tablelease-types.ts"));
    const lint = blocks.filter((b) => b.target === "commands").at(-1)!;
    const r = bash(lint.code, dir);
    expect(r.stdout).toBe("no tablelease leftovers\n");
    expect(r.code).toBe(0);
  });
});
