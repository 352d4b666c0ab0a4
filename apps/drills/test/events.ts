import type { Line, Proc } from "./procs.js";

/** A replication event as a drill dispatcher reports it. */
export interface EventLine extends Line {
  readonly seq: number;
  readonly type: string;
  readonly ts: number;
  readonly peer?: string;
  readonly sid?: number;
  readonly ft?: number;
  readonly rid?: string;
  readonly exp?: number;
  readonly refused?: string;
}

/** The events a dispatcher reported, in the order it reported them. */
export function eventsOf(proc: Proc): EventLine[] {
  return proc.of("event") as EventLine[];
}

/** Throws unless the sequence numbers run 1, 2, 3 … with no gap, no repeat and no step back. */
export function expectGapFreeSequence(events: readonly { seq: number }[], label: string): void {
  events.forEach((e, i) => {
    if (e.seq !== i + 1) throw new Error(`${label}: event #${i + 1} carries sequence number ${e.seq}`);
  });
}

/** Completed events per resource id. */
export function completionsById(events: readonly EventLine[]): Map<string, EventLine[]> {
  const byId = new Map<string, EventLine[]>();
  for (const e of events) {
    if (e.type !== "Completed" || e.rid === undefined) continue;
    byId.set(e.rid, [...(byId.get(e.rid) ?? []), e]);
  }
  return byId;
}

/** Resolves once every id in `ids` has a Completed event at `proc` (polling its lines). */
export async function allCompleted(proc: Proc, ids: readonly string[], timeoutMs: number): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const done = completionsById(eventsOf(proc));
    const missing = ids.filter((id) => !done.has(id));
    if (missing.length === 0) return Date.now();
    if (Date.now() > deadline) throw new Error(`${proc.name}: not completed in ${timeoutMs} ms: ${missing.join(", ")}`);
    await new Promise((res) => setTimeout(res, 50));
  }
}

/** `prefix-1` … `prefix-count`. */
export function ids(prefix: string, count: number): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}-${i + 1}`);
}

/** Prints a drill's measured figures (docs/reliability.md quotes them from a real run). */
export function report(drill: string, figures: Record<string, number | string>): void {
  console.log(`DRILL FIGURES ${drill} ${JSON.stringify(figures)}`);
}
