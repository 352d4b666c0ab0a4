/**
 * Pulls the tested code out of a guide. A fenced block is tested when the line before it is a marker:
 *
 *   <!-- run-by-test: bullmq/worker.ts -->        the block is written to that path and the test imports and runs it
 *   <!-- typecheck-by-test: snippets/events.ts --> the block is written to that path and only type-checked
 *   <!-- run-by-test: commands -->                 a bash block the test runs in a shell
 *   <!-- expected-output -->                       the block holds what the commands before it print
 *
 * The markdown is the only copy of the code: the tests never keep their own version of what a guide shows.
 */
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** One marked block of a guide. */
export interface GuideBlock {
  readonly kind: "run-by-test" | "typecheck-by-test" | "expected-output";
  /** The marker's argument: a relative file path, `commands`, or empty for `expected-output`. */
  readonly target: string;
  /** The fence's language (`ts`, `bash`, `text`). */
  readonly lang: string;
  readonly code: string;
  /** 1-based line of the marker in the guide. */
  readonly line: number;
}

/** The repository root (this file is tools/migration-guides/src/extract.ts). */
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));

/** Reads `docs/guides/<name>`. */
export function readGuide(name: string): string {
  return readFileSync(join(repoRoot, "docs", "guides", name), "utf8");
}

const MARKER = /^<!-- (run-by-test|typecheck-by-test|expected-output)(?::\s*(\S+))?\s*-->$/;
const FENCE_OPEN = /^```(\w*)\s*$/;

/**
 * Every marked block of a guide, in order.
 * @throws Error when a marker is not followed by a fenced block.
 */
export function markedBlocks(markdown: string): GuideBlock[] {
  const lines = markdown.split("\n");
  const blocks: GuideBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const m = MARKER.exec(lines[i]!.trim());
    if (!m) continue;
    const open = FENCE_OPEN.exec(lines[i + 1] ?? "");
    if (!open) throw new Error(`line ${i + 1}: marker '${lines[i]}' is not followed by a fenced block`);
    const end = lines.findIndex((l, j) => j > i + 1 && l.startsWith("```"));
    if (end < 0) throw new Error(`line ${i + 2}: fenced block never closed`);
    blocks.push({
      kind: m[1] as GuideBlock["kind"],
      target: m[2] ?? "",
      lang: open[1] ?? "",
      code: `${lines.slice(i + 2, end).join("\n")}\n`,
      line: i + 1,
    });
    i = end;
  }
  return blocks;
}

/** Fenced blocks in a language that carry no marker: each one is a piece of the guide no test looks at. */
export function unmarkedBlocks(markdown: string, langs: readonly string[]): Array<{ lang: string; line: number }> {
  const lines = markdown.split("\n");
  const out: Array<{ lang: string; line: number }> = [];
  let inFence = false;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (!line.startsWith("```")) continue;
    if (inFence) {
      inFence = false;
      continue;
    }
    inFence = true;
    const lang = FENCE_OPEN.exec(line)?.[1] ?? "";
    if (langs.includes(lang) && !MARKER.test((lines[i - 1] ?? "").trim())) out.push({ lang, line: i + 1 });
  }
  return out;
}

/** Writes every block with a file target under `dir`; returns the paths written. */
export function writeCodeBlocks(blocks: readonly GuideBlock[], dir: string): string[] {
  const written: string[] = [];
  for (const b of blocks) {
    if (b.kind === "expected-output" || b.target === "commands") continue;
    const path = join(dir, b.target);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, b.code);
    written.push(path);
  }
  return written;
}
