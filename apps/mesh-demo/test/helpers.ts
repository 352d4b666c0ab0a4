import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";

/** The built program the tests run as processes. */
export const mainScript = resolve(import.meta.dirname, "../dist/main.js");

/** A free TCP port on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolvePort(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** A child process of the demo with its output lines. */
export interface DemoProcess {
  readonly proc: ChildProcess;
  readonly lines: string[];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves with the first line (already seen or future) matching `pattern`. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

const running = new Set<ChildProcess>();

/** Starts `node dist/main.js …args`. */
export function startDemo(args: readonly string[], env: NodeJS.ProcessEnv = {}): DemoProcess {
  const proc = spawn(process.execPath, [mainScript, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  running.add(proc);
  const lines: string[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (line: string) => void }>();
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((res) =>
    proc.once("exit", (code, signal) => {
      running.delete(proc);
      res({ code, signal });
    }),
  );
  for (const stream of [proc.stdout, proc.stderr]) {
    if (!stream) continue;
    createInterface({ input: stream }).on("line", (line) => {
      lines.push(line);
      for (const w of [...waiters]) {
        if (w.pattern.test(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    });
  }
  return {
    proc,
    lines,
    exited,
    waitForLine: (pattern, timeoutMs = 15_000) => {
      const seen = lines.find((l) => pattern.test(l));
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((res, rej) => {
        const waiter = { pattern, resolve: res };
        waiters.add(waiter);
        setTimeout(() => {
          if (!waiters.delete(waiter)) return;
          rej(new Error(`no line matching ${pattern} within ${timeoutMs} ms; output:\n${lines.join("\n")}`));
        }, timeoutMs).unref();
      });
    },
  };
}

/** Kills every demo process a test left running (SIGKILL). */
export async function killAll(): Promise<void> {
  for (const proc of running) proc.kill("SIGKILL");
  while (running.size > 0) await sleep(20);
}

/** A temporary data directory, removed by the returned function. */
export function tempDir(): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), "mesh-demo-test-"));
  // A child killed just before removal may still be closing files in it: retry ENOTEMPTY/EBUSY briefly.
  return { path, remove: () => rmSync(path, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }) };
}

/** GET JSON. */
export async function getJson<T = Record<string, unknown>>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return (await res.json()) as T;
}

/** POST JSON. */
export async function postJson(url: string, body: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(url, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(5_000),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

/** Polls `check` until it returns a value other than undefined/false. */
export async function eventually<T>(check: () => Promise<T | undefined | false>, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline)
      throw new Error(`condition not met in ${timeoutMs} ms${last ? `: ${String(last)}` : ""}`);
    await sleep(100);
  }
}

/** Starts the dispatcher+diagnostics role and waits until it is ready; returns its URLs. */
export async function startDispatcher(
  dataDir: string,
  extra: readonly string[] = [],
  ports?: { rpc: number; http: number },
): Promise<{ demo: DemoProcess; rpcUrl: string; httpUrl: string; ports: { rpc: number; http: number } }> {
  const p = ports ?? { rpc: await freePort(), http: await freePort() };
  const rpcUrl = `http://127.0.0.1:${p.rpc}`;
  const httpUrl = `http://127.0.0.1:${p.http}`;
  const demo = startDemo([
    "--roles",
    "dispatcher,diagnostics",
    "--rpc-url",
    rpcUrl,
    "--http-url",
    httpUrl,
    "--data-dir",
    dataDir,
    ...extra,
  ]);
  await demo.waitForLine(/Dispatcher ready/);
  return { demo, rpcUrl, httpUrl, ports: p };
}

/** The `/demo/state` document (the parts the tests read). */
export interface MeshStateDoc {
  health: { peers: { peerId: string; isHealthy: boolean; activeAssignments: number; pendingReassignments: number }[] };
  shards: { namespace: string; pending: number; active: number; deadLetters: number }[];
  catalogs: {
    tableCount: number;
    counts: Record<string, number>;
    recentOperations: { requestId: string; appliedBy: string; outcome: string }[];
  };
}
