import { existsSync, renameSync, rmSync, writeFileSync } from "node:fs";
import {
  ErrorCodes,
  isOmniRelayError,
  ResourceLeaseQueue,
  type ResourceLeaseQueueSnapshot,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import { type EventChainDivergence, EventChainVerifier } from "@omnirelay/core/wire";
import { usageError } from "../output.js";
import { toDrainFile } from "../wire.js";
import { loadOptional, type OpenedStream, openSource, type SourceOptions } from "./sources.js";

/** What `rebuild` was asked. */
export interface RebuildRequest extends SourceOptions {
  readonly from: string;
  readonly verify: boolean;
  /** `sqlite:<path>` and/or `drain:<file>`. */
  readonly out: readonly string[];
  readonly namespace: string;
}

/** What `rebuild` found and wrote (`--json` prints it). */
export interface RebuildReport {
  readonly source: string;
  /** `--verify` was given and the stream held to its end (false beside a `divergence`). */
  readonly verified: boolean;
  readonly snapshotSequence?: number;
  readonly firstSequence?: number;
  readonly lastSequence: number;
  readonly events: number;
  readonly chainStartsAt?: number;
  readonly lastHash?: string;
  readonly divergence?: EventChainDivergence;
  readonly state?: { pending: number; delayed: number; active: number; deadLetters: number };
  readonly written: readonly string[];
}

/** A divergence found while the stream fed the rebuild. */
class Diverged extends Error {
  constructor(readonly divergence: EventChainDivergence) {
    super(divergence.reason);
  }
}

type Sqlite = typeof import("@omnirelay/replicator-sqlite");
type SqliteLog = Awaited<ReturnType<Sqlite["SqliteResourceLeaseReplicator"]["open"]>>;

/** The targets of `--out`, checked before anything is read. */
function targets(out: readonly string[], opened: OpenedStream): { sqlite?: string; drain?: string } {
  const t: { sqlite?: string; drain?: string } = {};
  for (const spec of out) {
    const m = /^(sqlite|drain):(.+)$/.exec(spec);
    if (!m?.[2]) throw usageError(`--out '${spec}': expected sqlite:<path> or drain:<file>`);
    if (existsSync(m[2])) throw usageError(`--out '${spec}': the file exists; give a new path`);
    t[m[1] as "sqlite" | "drain"] = m[2];
  }
  if (t.sqlite && opened.snapshot) {
    throw usageError(
      `--out sqlite: needs the stream from event 1, and this source starts after a snapshot at ${opened.snapshot.lastEventSequence}; write --out drain:<file> instead`,
    );
  }
  return t;
}

/** The stream's events, checked as they pass (when verifying): a divergence ends the stream with {@link Diverged}. */
async function* checked(
  opened: OpenedStream,
  verifier: EventChainVerifier | undefined,
  sink: (event: ResourceLeaseReplicationEvent) => Promise<void>,
): AsyncGenerator<ResourceLeaseReplicationEvent> {
  for await (const entry of opened.entries) {
    if ("unreadable" in entry) {
      const d = verifier
        ? verifier.unreadable(entry.unreadable, entry.sequenceNumber)
        : {
            sequenceNumber: entry.sequenceNumber ?? 0,
            code: ErrorCodes.replication.eventUnreadable,
            reason: entry.unreadable,
          };
      throw new Diverged(d);
    }
    const d = verifier?.push(entry.event);
    if (d) throw new Diverged(d);
    await sink(entry.event);
    yield entry.event;
  }
  const d = verifier?.finish();
  if (d) throw new Diverged(d);
}

/** Rebuilds the state a stream describes, verifying it on the way when asked, and writes the outputs. */
export async function runRebuild(request: RebuildRequest): Promise<RebuildReport> {
  const opened = await openSource(request.from, request);
  try {
    const t = targets(request.out, opened);
    const snapshot = opened.snapshot;
    const verifier = request.verify
      ? new EventChainVerifier({
          afterSequence: snapshot?.lastEventSequence ?? 0,
          ...(snapshot?.lastEventHash !== undefined ? { afterHash: snapshot.lastEventHash } : {}),
        })
      : undefined;
    const tmp = t.sqlite ? `${t.sqlite}.${process.pid}.tmp` : undefined;
    let log: SqliteLog | undefined;
    if (tmp) {
      const { SqliteResourceLeaseReplicator } = await loadOptional<Sqlite>("@omnirelay/replicator-sqlite", "sqlite:");
      log = await SqliteResourceLeaseReplicator.open({ path: tmp });
    }
    let batch: ResourceLeaseReplicationEvent[] = [];
    let first: number | undefined;
    let last = snapshot?.lastEventSequence ?? 0;
    let count = 0;
    const sink = async (event: ResourceLeaseReplicationEvent) => {
      first ??= event.sequenceNumber;
      last = event.sequenceNumber;
      count++;
      if (!log) return;
      batch.push(event);
      if (batch.length >= 1000) {
        await log.publish(batch);
        batch = [];
      }
    };
    const base = {
      source: request.from,
      verified: request.verify,
      ...(snapshot ? { snapshotSequence: snapshot.lastEventSequence } : {}),
    };
    const chain = () => ({
      ...(first !== undefined ? { firstSequence: first } : {}),
      lastSequence: last,
      events: count,
      ...(verifier?.chainStartsAt !== undefined ? { chainStartsAt: verifier.chainStartsAt } : {}),
      ...(verifier?.lastHash !== undefined ? { lastHash: verifier.lastHash } : {}),
    });
    let queue: ResourceLeaseQueue;
    try {
      queue = await ResourceLeaseQueue.rebuild(
        checked(opened, verifier, sink),
        {},
        {
          activeLeases: "keep",
          ...(snapshot ? { snapshot } : {}),
        },
      );
      if (log && batch.length > 0) await log.publish(batch);
      await log?.close();
    } catch (error) {
      await log?.close().catch(() => undefined);
      if (tmp) for (const f of [tmp, `${tmp}.hwm`, `${tmp}-wal`, `${tmp}-shm`]) rmSync(f, { force: true });
      const divergence = divergenceOf(error, last);
      if (!divergence) throw error;
      return { ...base, verified: false, ...chain(), divergence, written: [] };
    }
    const state = queue.snapshot();
    await queue.close();
    const written: string[] = [];
    if (tmp && t.sqlite) {
      for (const suffix of ["", ".hwm"])
        if (existsSync(`${tmp}${suffix}`)) renameSync(`${tmp}${suffix}`, `${t.sqlite}${suffix}`);
      written.push(`sqlite:${t.sqlite}`);
    }
    if (t.drain) {
      await writeDrain(t.drain, state, request);
      written.push(`drain:${t.drain}`);
    }
    return { ...base, ...chain(), state: counts(state), written };
  } finally {
    await opened.close();
  }
}

/** A divergence from the verifier, or from the rebuild itself (a gap or an event that does not fit the state). */
function divergenceOf(error: unknown, last: number): EventChainDivergence | undefined {
  if (error instanceof Diverged) return error.divergence;
  if (isOmniRelayError(error) && error.code === ErrorCodes.replication.replayMismatch) {
    const at = Number(error.metadata?.sequenceNumber ?? last + 1);
    return { sequenceNumber: at, code: error.code, reason: error.message };
  }
  return undefined;
}

function counts(s: ResourceLeaseQueueSnapshot) {
  return {
    pending: s.pending.length,
    delayed: s.delayed.length,
    active: s.active.length,
    deadLetters: s.deadLetters.length,
  };
}

/**
 * Writes what a node restarted from the stream would hold as a drain file for `restore`: the leases expire (nobody
 * holds them any more), and every queued item is drained, in the order a drain takes them.
 */
async function writeDrain(path: string, state: ResourceLeaseQueueSnapshot, request: RebuildRequest): Promise<void> {
  const queue = await ResourceLeaseQueue.rebuild([], {}, { snapshot: state, activeLeases: "expire" });
  const items = [];
  for (;;) {
    const page = await queue.drain();
    if (page.length === 0) break;
    items.push(...page);
  }
  await queue.close();
  writeFileSync(path, `${JSON.stringify(toDrainFile(request.namespace, items, request.from), null, 2)}\n`, {
    flag: "wx",
  });
}
