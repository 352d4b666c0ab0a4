import { setTimeout as sleep } from "node:timers/promises";
import type { ResourceLeaseQueueStats } from "@omnirelay/core";
import type { Command } from "commander";
import { type GlobalOptions, getControlJson, globals, intArg, withClient } from "../context.js";
import { CliError, type ExitCode, ExitCodes, printable, reportError, table } from "../output.js";

/** One namespace's counters as the control plane's `/omnirelay/control/queues` lists them. */
export interface QueueRow {
  readonly namespace: string;
  readonly pendingCount?: number;
  readonly activeLeaseCount?: number;
  readonly deadLetterCount?: number;
  readonly state?: string;
}

/** Normalises the queues document: a list, `{queues|namespaces: list}`, or an object keyed by namespace. */
export function queueRows(doc: unknown): QueueRow[] {
  if (!doc || typeof doc !== "object") return [];
  const d = doc as Record<string, unknown>;
  const list = Array.isArray(doc) ? doc : (d.queues ?? d.namespaces);
  if (Array.isArray(list)) {
    return list.filter((x) => x && typeof x === "object" && typeof x.namespace === "string") as QueueRow[];
  }
  if (list && typeof list === "object") return queueRows(list as unknown);
  return Object.entries(d)
    .filter(([, v]) => v && typeof v === "object" && !Array.isArray(v))
    .map(([namespace, v]) => ({ namespace, ...(v as object) }));
}

interface Snapshot {
  readonly namespace: string;
  readonly stats: ResourceLeaseQueueStats;
  readonly queues?: QueueRow[];
}

async function snapshot(g: GlobalOptions): Promise<Snapshot> {
  const stats = await withClient(g, (c) => c.stats());
  if (!g.controlUrl) return { namespace: g.namespace, stats };
  const queues = queueRows(await getControlJson(g, g.controlUrl, "omnirelay/control/queues"));
  return { namespace: g.namespace, stats, queues };
}

const n = (v: number | undefined) => (v === undefined ? "-" : String(v));

function render(s: Snapshot): string {
  const st = s.stats;
  const main = table(
    ["NAMESPACE", "STATE", "PENDING", "DELAYED", "ACTIVE", "DEAD", "LAST-EVENT", "FENCING", "CAPACITY"],
    [
      [
        s.namespace,
        st.state,
        st.pendingCount,
        st.delayedCount,
        st.activeLeaseCount,
        st.deadLetterCount,
        st.lastEventSequence,
        st.lastFencingToken,
        st.capacity,
      ],
    ],
  );
  if (!s.queues) return main;
  const rows = s.queues.map((q) => [
    q.namespace,
    q.state ?? "-",
    n(q.pendingCount),
    n(q.activeLeaseCount),
    n(q.deadLetterCount),
  ]);
  return `${main}\n\ncontrol plane queues:\n${table(["NAMESPACE", "STATE", "PENDING", "ACTIVE", "DEAD"], rows)}`;
}

/** Registers stats (with --watch). */
export function registerStatsCommand(rl: Command): void {
  rl.command("stats")
    .description("queue counters; --watch refreshes them (plus control-plane queues with --control-url)")
    .option("--watch", "refresh until interrupted (with --json: one JSON document per line)")
    .option("--interval-ms <ms>", "refresh interval of --watch", intArg(100), 2000)
    .option("--count <n>", "stop --watch after n refreshes", intArg(1))
    .action(async (o, cmd: Command) => {
      const g = globals(cmd);
      if (!o.watch) {
        const s = await snapshot(g);
        process.stdout.write(g.json ? `${JSON.stringify(s)}\n` : `${printable(render(s), { newlines: true })}\n`);
        return;
      }
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      const tty = process.stdout.isTTY && !g.json;
      let lastExit: ExitCode = ExitCodes.ok;
      try {
        for (let i = 0; !stop.signal.aborted && (o.count === undefined || i < o.count); i++) {
          if (i > 0) await sleep(o.intervalMs as number, undefined, { signal: stop.signal }).catch(() => undefined);
          if (stop.signal.aborted) break;
          try {
            const s = await snapshot(g);
            const at = new Date().toISOString();
            if (g.json) process.stdout.write(`${JSON.stringify({ at, ...s })}\n`);
            else
              process.stdout.write(
                `${tty ? "\x1b[2J\x1b[H" : ""}${at}\n${printable(render(s), { newlines: true })}\n\n`,
              );
            lastExit = ExitCodes.ok;
          } catch (error) {
            // A watch keeps going through a restart of the node; the error line says why a frame is missing.
            lastExit = reportError(error);
          }
        }
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
      if (lastExit !== ExitCodes.ok) throw new CliError(lastExit, "the last refresh failed");
    });
}
