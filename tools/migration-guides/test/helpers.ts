import { execFile } from "node:child_process";
import { randomUUID } from "node:crypto";
import { rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { markedBlocks, readGuide, repoRoot, writeCodeBlocks } from "../src/extract.js";

const run = promisify(execFile);
const packageDir = fileURLToPath(new URL("../", import.meta.url));

/** What a guide's mailer was asked to do. */
export interface MailerRecord {
  /** Every message that went out, sorted by address. */
  readonly sent: Array<{ to: string; subject: string; text: string }>;
  /** Calls per address, failed ones included. */
  readonly calls: Record<string, number>;
}

/** A mailer that records what it sends and fails the first send to `flaky`, like a busy SMTP server. */
export function recordingMailer(flaky: string) {
  const sent: Array<{ to: string; subject: string; text: string }> = [];
  const calls: Record<string, number> = {};
  const callTimes: number[] = [];
  return {
    sent,
    /** Time between the first (failed) and the second call for `flaky`. */
    retryGapMs: () => (callTimes[1] ?? Number.NaN) - (callTimes[0] ?? Number.NaN),
    mailer: {
      async send(message: { to: string; subject: string; text: string }): Promise<void> {
        calls[message.to] = (calls[message.to] ?? 0) + 1;
        if (message.to === flaky) callTimes.push(Date.now());
        if (message.to === flaky && calls[message.to] === 1) throw new Error("421 try again later");
        sent.push({ ...message });
      },
    },
    record(): MailerRecord {
      return { sent: [...sent].sort((a, b) => a.to.localeCompare(b.to)), calls: { ...calls } };
    },
  };
}

/** Polls until `ready()` or throws after `timeoutMs`. */
export async function waitUntil(ready: () => boolean | Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await ready())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the guide's workers");
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * Writes a guide's marked code blocks to a fresh folder inside this package (so `bullmq`, `graphile-worker` and the
 * workspace packages resolve from its node_modules). `dispose` removes it.
 */
export function extractGuide(name: string) {
  const blocks = markedBlocks(readGuide(name));
  const dir = join(packageDir, ".guide-code", `${name.replace(/\.md$/, "")}-${randomUUID()}`);
  const files = writeCodeBlocks(blocks, dir);
  return { dir, files, blocks, dispose: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Type-checks a folder of extracted code with the repository's strict compiler options. */
export async function typecheck(dir: string): Promise<{ ok: boolean; output: string }> {
  writeFileSync(
    join(dir, "tsconfig.json"),
    JSON.stringify({
      extends: join(repoRoot, "tsconfig.base.json"),
      compilerOptions: { noEmit: true, rootDir: "." },
      include: ["**/*.ts"],
    }),
  );
  const tsc = createRequire(join(repoRoot, "package.json")).resolve("typescript/bin/tsc");
  try {
    const { stdout } = await run(process.execPath, [tsc, "-p", dir], { cwd: dir });
    return { ok: true, output: stdout };
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ""}${e.stderr ?? ""}` };
  }
}

/** The signups of both worked examples. */
export const USERS: ReadonlyArray<{ to: string; name: string }> = [
  { to: "ada@example.com", name: "Ada" },
  { to: "flaky@example.com", name: "Flaky" },
  { to: "grace@example.com", name: "Grace" },
];

/** What both versions must produce: each address mailed once, the flaky one after one retry. */
export const EXPECTED_CALLS = { "ada@example.com": 1, "flaky@example.com": 2, "grace@example.com": 1 };
