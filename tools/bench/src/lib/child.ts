/** The child side of the IPC protocol of {@link startChild}: command handlers, a ready message, exit. */
import { nowMs } from "./stats.js";

/** A command handler of a child process. */
export type Handler = (args: Record<string, unknown>) => Promise<unknown>;

/** Reads the child's JSON config from argv[2]. */
export function childConfig<T>(): T {
  return JSON.parse(process.argv[2] ?? "{}") as T;
}

/**
 * Serves commands from the parent until it sends `exit` (then `onExit` runs and the process exits) or disconnects.
 * Errors of a handler are returned to the parent, never thrown.
 */
export function serve(
  ready: Record<string, unknown>,
  handlers: Record<string, Handler>,
  onExit: () => Promise<void>,
): void {
  const send = (m: unknown) => {
    if (process.connected) process.send?.(m);
  };
  let exiting = false;
  const exit = async () => {
    if (exiting) return;
    exiting = true;
    await onExit().catch(() => undefined);
    process.exit(0);
  };
  process.on("disconnect", () => void exit());
  process.on("message", (message: unknown) => {
    const m = message as { id: number; cmd: string; args: Record<string, unknown> };
    if (m.cmd === "exit") {
      void exit();
      return;
    }
    const handler = handlers[m.cmd];
    if (!handler) {
      send({ id: m.id, ok: false, error: `unknown command ${m.cmd}` });
      return;
    }
    handler(m.args).then(
      (result) => send({ id: m.id, ok: true, result }),
      (error: unknown) => send({ id: m.id, ok: false, error: error instanceof Error ? error.stack : String(error) }),
    );
  });
  send({ type: "ready", ...ready });
}

/** A 200-byte-ish JSON job body carrying its enqueue time `t` (ms, see `nowMs`) and, for the tenant rows, its tenant. */
export function jobData(t: number, tenant?: string): { t: number; pad: string; tenant?: string } {
  return tenant === undefined ? { t, pad: PAD } : { t, pad: PAD, tenant };
}

/**
 * What a producer's `enqueue` and `paced` commands may add to each item: a delay (the delayed-items row) and a tenant
 * (the tenant rows). Each system expresses them its own way.
 */
export interface ItemOptions {
  readonly delayMs?: number;
  readonly tenant?: string;
}

/** The {@link ItemOptions} of a command's arguments. */
export function itemOptions(a: Record<string, unknown>): ItemOptions {
  return {
    ...(typeof a.delayMs === "number" ? { delayMs: a.delayMs } : {}),
    ...(typeof a.tenant === "string" ? { tenant: a.tenant } : {}),
  };
}

/** Whether a consumer with `latency` on records this job's latency: every job, or only `latencyTenant`'s. */
export function measured(a: Record<string, unknown>, data: { tenant?: string }): boolean {
  return a.latency === true && (a.latencyTenant === undefined || data.tenant === a.latencyTenant);
}

/** The small tenant of the tenant rows (the large one is {@link BULK_TENANT}). */
export const SMALL_TENANT = "small";
/** The large tenant of the tenant rows. */
export const BULK_TENANT = "bulk";

const PAD = "x".repeat(176);

/** Runs `count` tasks with at most `inFlight` at once; `task(i)` starts task i. */
export async function pipelined(count: number, inFlight: number, task: (i: number) => Promise<unknown>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      await task(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(inFlight, count) }, lane));
}

/** Enqueues one item at a time at `ratePerSec` (absolute schedule, so a late tick catches up). */
export async function paced(count: number, ratePerSec: number, task: (i: number) => Promise<unknown>): Promise<void> {
  const start = performance.now();
  const interval = 1000 / ratePerSec;
  const inflight: Promise<unknown>[] = [];
  for (let i = 0; i < count; i++) {
    const due = start + i * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    inflight.push(task(i));
  }
  await Promise.all(inflight);
}

/**
 * What a consumer gets besides its arguments. In shared mode (`args.shared`, several consumer processes on one queue)
 * a consumer cannot know when the run is over: it reports its completions through `progress` and runs until `ended`.
 */
export interface ConsumeControl {
  /** Resolves `consumeStart`: the consumer runs (its start-up is not timed). */
  started(): void;
  /** Shared mode: this consumer's acknowledged completions so far (`consumeProgress` reports them and when the last
   * one came). */
  progress(completed: number): void;
  /** Shared mode: resolves when the parent has seen every item completed (`consumeEnd`). */
  readonly ended: Promise<void>;
  /** Shared mode: the time (`nowMs`) of the last acknowledged completion, 0 before the first. */
  lastAt(): number;
}

/**
 * Turns a `consume(args, control)` function into the commands `consumeStart` (resolves once the consumer runs),
 * `consumeWait` (its result), and for shared mode `consumeProgress` (`{ completed, lastAt }`) and `consumeEnd`.
 */
export function consumeCommands(
  consume: (args: Record<string, unknown>, control: ConsumeControl) => Promise<unknown>,
): Record<string, Handler> {
  let running: Promise<unknown> | undefined;
  let completed = 0;
  let last = 0;
  let end: () => void = () => undefined;
  return {
    consumeStart: (args) =>
      new Promise<unknown>((resolve, reject) => {
        completed = 0;
        last = 0;
        const ended = new Promise<void>((r) => {
          end = r;
        });
        const control: ConsumeControl = {
          started: () => resolve({}),
          progress(n) {
            if (n === completed) return;
            completed = n;
            last = nowMs();
          },
          ended,
          lastAt: () => last,
        };
        running = consume(args, control);
        running.catch(reject);
        running.catch(() => undefined);
      }),
    consumeProgress: async () => ({ completed, lastAt: last }),
    consumeEnd: async () => {
      end();
      return {};
    },
    consumeWait: async () => {
      if (!running) throw new Error("consumeStart was not called");
      const result = await running;
      running = undefined;
      return result;
    },
  };
}
