import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

/** The built drill program (src/main.ts). */
export const drillMain = resolve(import.meta.dirname, "../dist/main.js");

/** tools/mesh-chaos.sh. */
export const chaosScript = resolve(import.meta.dirname, "../../../tools/mesh-chaos.sh");

/** Runs tools/mesh-chaos.sh with `args`; its JSON lines are typed by their `event`. */
export function startChaos(args: readonly string[]): Proc {
  const child = spawn("bash", [chaosScript, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  return new Proc("mesh-chaos", child);
}

/** The built replication hub (`omnirelay-hub`, apps/replication-hub). */
export const hubMain = resolve(import.meta.dirname, "../node_modules/@omnirelay/hub/dist/main.js");

/** One JSON line a drill process reported. */
export type Line = Record<string, unknown> & { t: string; at: number };

const running = new Set<ChildProcess>();

/** A drill process (dispatcher, worker, hub …) with everything it reported. */
export class Proc {
  readonly lines: Line[] = [];
  readonly stderr: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private readonly waiters = new Set<{ match: (l: Line) => boolean; resolve: (l: Line) => void }>();

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    running.add(child);
    this.exited = new Promise((res) =>
      child.once("exit", (code, signal) => {
        running.delete(child);
        res({ code, signal });
      }),
    );
    child.stdin?.on("error", () => {});
    if (child.stdout) createInterface({ input: child.stdout }).on("line", (text) => this.onLine(text));
    if (child.stderr) createInterface({ input: child.stderr }).on("line", (text) => this.stderr.push(text));
  }

  /** Lines of type `t` (optionally filtered). */
  of(t: string, filter: (l: Line) => boolean = () => true): Line[] {
    return this.lines.filter((l) => l.t === t && filter(l));
  }

  /** The first line (seen or future) matching `match`. */
  waitFor(match: (l: Line) => boolean, timeoutMs = 15_000): Promise<Line> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((res, rej) => {
      const waiter = { match, resolve: res };
      this.waiters.add(waiter);
      const fail = (why: string) => {
        if (!this.waiters.delete(waiter)) return;
        rej(new Error(`${this.name}: no matching line (${why}); stderr:\n${this.stderr.join("\n")}`));
      };
      setTimeout(() => fail(`${timeoutMs} ms passed`), timeoutMs).unref();
      void this.exited.then(({ code, signal }) => fail(`exited with ${signal ?? code}`));
    });
  }

  /** Sends a command; resolves with the first reply line of type `reply` after it. */
  async ask(command: Record<string, unknown>, reply: string, timeoutMs = 15_000): Promise<Line> {
    const from = this.lines.length;
    const answer = this.waitFor((l) => l.t === reply && this.lines.indexOf(l) >= from, timeoutMs);
    this.send(command);
    return answer;
  }

  send(command: Record<string, unknown>): void {
    this.child.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  /** Closes stdin (the process stops cleanly) and waits for the exit. */
  async stop(): Promise<void> {
    this.child.stdin?.end();
    await this.exited;
  }

  kill(): void {
    this.child.kill("SIGKILL");
  }

  private onLine(text: string): void {
    let line: Line;
    try {
      line = JSON.parse(text) as Line;
    } catch {
      this.stderr.push(text);
      return;
    }
    // The hub's `{"event":"listening",…}` line, mesh-chaos.sh's lines: typed by their `event`, timed by their `at`.
    if (typeof line.t !== "string" && typeof line.event === "string")
      line = { ...line, t: line.event, at: typeof line.at === "number" ? line.at : Date.now() };
    if (typeof line.t !== "string") {
      this.stderr.push(text);
      return;
    }
    this.lines.push(line);
    for (const w of [...this.waiters]) {
      if (w.match(line)) {
        this.waiters.delete(w);
        w.resolve(line);
      }
    }
  }
}

/**
 * Starts `node …args` (or `command`, a program and its arguments), inside network namespace `netns` when given
 * (`ip netns exec`).
 */
export function startNode(name: string, argv: { args: readonly string[]; netns?: string; command?: string[] }): Proc {
  const node = argv.command ?? [process.execPath, ...argv.args];
  const [cmd, ...args] = argv.netns ? ["ip", "netns", "exec", argv.netns, ...node] : node;
  return new Proc(name, spawn(cmd as string, args, { stdio: ["pipe", "pipe", "pipe"] }));
}

/** Starts a drill dispatcher or worker (src/main.ts) and waits for its `ready` line. */
export async function startDrill(
  name: string,
  spec: { role: "dispatcher" | "worker" | "owner"; config: Record<string, unknown>; netns?: string },
): Promise<Proc> {
  const proc = startNode(name, {
    args: [drillMain, spec.role, JSON.stringify(spec.config)],
    ...(spec.netns ? { netns: spec.netns } : {}),
  });
  await proc.waitFor((l) => l.t === "ready");
  return proc;
}

/** SIGKILLs every process a drill left running and waits for them to go. */
export async function killAll(): Promise<void> {
  const all = [...running];
  for (const child of all) child.kill("SIGKILL");
  await Promise.all(
    all.map(
      (child) =>
        new Promise((res) => (child.exitCode !== null || child.signalCode !== null ? res(0) : child.once("exit", res))),
    ),
  );
}

/** A temporary directory, removed by the returned function. */
export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `omnirelay-drill-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 }) };
}

/** Resolves after `ms`. */
export const sleep = (ms: number) => new Promise<void>((res) => setTimeout(res, ms));
