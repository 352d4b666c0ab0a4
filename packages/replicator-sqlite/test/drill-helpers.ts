import { type ChildProcess, spawn } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { HttpOutbound, isOmniRelayError, ResourceLeaseClient } from "@omnirelay/core";
import { onTestFinished } from "vitest";

export const here = dirname(fileURLToPath(import.meta.url));
export const fixture = join(here, "fixtures", "durable-dispatcher.mjs");
export const built = join(here, "..", "dist", "index.js");

/** Small deterministic PRNG (mulberry32), seeded per run and printed on failure. */
export function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface Running {
  readonly child: ChildProcess;
  readonly client: ResourceLeaseClient;
  readonly exited: Promise<void>;
  /** Events the node replayed from its log at start (after the snapshot it loaded). */
  readonly replayed: number;
  /** Sequence number of the snapshot the node loaded at start (0 when none). */
  readonly snapshot: number;
  /** Events the fixture's coordinator recorded while replaying the log at start. */
  readonly recordedAtStart: number;
  /** Events the coordinator was given before the node served: tagged `lease.replay=true` (`replay`) or `false`. */
  readonly delivered: { readonly replay: number; readonly live: number };
}

/** Starts the fixture dispatcher on `path`; `durability` is the log's mode (default the package's, 'batched'). */
export async function start(path: string, ...extra: string[]): Promise<Running> {
  return startWith({}, path, ...extra);
}

export async function startWith(
  options: { durability?: string; writerThread?: boolean; effects?: "json" },
  path: string,
  ...extra: string[]
): Promise<Running> {
  const env = {
    ...process.env,
    ...(options.durability ? { DRILL_DURABILITY: options.durability } : {}),
    ...(options.writerThread !== undefined ? { DRILL_WRITER_THREAD: String(options.writerThread) } : {}),
    ...(options.effects ? { DRILL_EFFECTS: options.effects } : {}),
  };
  const child = spawn(process.execPath, [fixture, path, ...extra], { stdio: ["ignore", "pipe", "pipe"], env });
  // Killed after the test if it is still running (a test that failed half-way leaves none behind).
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const line = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once("line", (l) => {
      rl.close();
      resolve(l);
    });
    child.once("close", (code) => reject(new Error(`dispatcher exited with ${code} before serving: ${stderr}`)));
  });
  const info = JSON.parse(line) as {
    port: number;
    replayed: number;
    snapshot: number;
    recordedAtStart?: number;
    delivered?: Running["delivered"];
    error?: Refusal;
  };
  if (info.error) {
    await exited;
    throw new RefusedToStart(info.error);
  }
  const { port } = info;
  const client = new ResourceLeaseClient({
    outbound: new HttpOutbound({ url: `http://127.0.0.1:${port}`, timeoutMs: 10_000 }),
    caller: "drill",
  });
  return {
    child,
    client,
    exited,
    replayed: info.replayed,
    snapshot: info.snapshot,
    recordedAtStart: info.recordedAtStart ?? 0,
    delivered: info.delivered ?? { replay: 0, live: 0 },
  };
}

/** Why the fixture refused to open its log. */
export interface Refusal {
  readonly code: string;
  readonly metadata: Record<string, string>;
  readonly message: string;
}

/** Thrown by {@link start} when the fixture refused to open its log (it printed the error and exited 4). */
export class RefusedToStart extends Error {
  constructor(readonly refusal: Refusal) {
    super(`the dispatcher refused to start: ${refusal.code} ${JSON.stringify(refusal.metadata)}`);
  }
}

export function codeOf(error: unknown): string {
  return isOmniRelayError(error) ? error.code : String(error);
}
