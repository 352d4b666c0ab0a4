import type { ResourceLeaseDeadLetterItem, ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { PeerLeaseHealthDiagnostics } from "@omnirelay/core/peers";
import { encodeReplicationEvent } from "@omnirelay/core/wire";
import type { DispatcherNode, MeshShard } from "./dispatcher-node.js";

/** One point of the live page's charts: rates over the last interval, gauges at `t`. */
export interface MeshSample {
  /** When it was taken, ms since the epoch. */
  readonly t: number;
  readonly enqueuedPerSec: number;
  readonly completedPerSec: number;
  readonly pending: number;
  readonly active: number;
  readonly deadLetters: number;
  /** The largest replication lag of any shard. */
  readonly lagMs: number;
  /** Events the followers have yet to apply, every shard together. */
  readonly behindEvents: number;
}

/** One shard's replication: the SQLite log's last sequence against what the follower has applied. */
function replicationOf(s: MeshShard) {
  const lastSequence = s.durable.queue.stats().lastEventSequence;
  const followerSequence = s.follower.checkpoint;
  return {
    shard: s.namespace,
    lastSequence,
    followerSequence,
    behindEvents: Math.max(0, lastSequence - followerSequence),
    lagMs: followerSequence >= lastSequence ? 0 : (s.tracked.checkpoint().lagMs ?? 0),
  };
}

/**
 * The charts' memory: one {@link MeshSample} per `sample()` call (the diagnostics server takes one a second), the
 * newest `capacity` kept (300: five minutes), so a page opened late still draws the last minutes.
 */
export class MeshHistory {
  private readonly samples: MeshSample[] = [];
  private previous: { t: number; enqueued: number; completed: number } | undefined;

  constructor(private readonly capacity = 300) {}

  /** Takes a sample of `node` now. */
  sample(node: DispatcherNode, now = Date.now()): MeshSample {
    const enqueued = node.feed.countOf("Enqueue");
    const completed = node.feed.countOf("Completed");
    const prev = this.previous ?? { t: now, enqueued, completed };
    const seconds = Math.max((now - prev.t) / 1000, 0.001);
    const rate = (n: number) => (now === prev.t ? 0 : Math.round((n / seconds) * 10) / 10);
    const stats = node.shards.map((s) => s.durable.queue.stats());
    const replication = node.shards.map(replicationOf);
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    const point: MeshSample = {
      t: now,
      enqueuedPerSec: rate(enqueued - prev.enqueued),
      completedPerSec: rate(completed - prev.completed),
      pending: sum(stats.map((s) => s.pendingCount)),
      active: sum(stats.map((s) => s.activeLeaseCount)),
      deadLetters: sum(stats.map((s) => s.deadLetterCount)),
      lagMs: Math.max(0, ...replication.map((r) => r.lagMs)),
      behindEvents: sum(replication.map((r) => r.behindEvents)),
    };
    this.previous = { t: now, enqueued, completed };
    this.samples.push(point);
    if (this.samples.length > this.capacity) this.samples.splice(0, this.samples.length - this.capacity);
    return point;
  }

  /** The newest `limit` samples, oldest first. */
  latest(limit = this.capacity): MeshSample[] {
    return this.samples.slice(-limit);
  }
}

/** A dead letter as the page lists it. */
export interface DeadLetterRow {
  readonly sequenceId: number;
  readonly resourceType: string;
  readonly resourceId: string;
  readonly reason: ResourceLeaseDeadLetterItem["reason"];
  /** The attempt it was dead-lettered at. */
  readonly attempt: number;
  readonly enqueuedAt: string;
  readonly deadLetteredAt: string;
  readonly error?: string;
  readonly errorCode?: string;
}

/** A shard's dead letters: how many there are and the newest of them. */
export interface ShardDeadLetters {
  readonly shard: string;
  readonly count: number;
  readonly items: readonly DeadLetterRow[];
}

/**
 * The dead letters of every shard, newest first. The queue lists them oldest first, so the whole set is read, and
 * read again only when it changed (a DeadLettered, Redriven or DeadLetterPurged event, or a different count).
 */
export class DeadLetterView {
  private readonly cache = new Map<string, { key: string; items: DeadLetterRow[] }>();

  constructor(private readonly perShard = 25) {}

  /** Every shard's dead letters (newest `perShard` of each). */
  list(node: DispatcherNode): ShardDeadLetters[] {
    return node.shards.map((s) => {
      const count = s.durable.queue.stats().deadLetterCount;
      const key = `${count}/${node.feed.deadLetterChanges(s.namespace)}`;
      let cached = this.cache.get(s.namespace);
      if (cached?.key !== key) {
        const all = count === 0 ? [] : s.durable.queue.deadLetters({ limit: Math.min(count, 100_000) });
        const items = all
          .sort((a, b) => b.deadLetteredAt - a.deadLetteredAt || b.sequenceId - a.sequenceId)
          .slice(0, this.perShard)
          .map(deadLetterRow);
        cached = { key, items };
        this.cache.set(s.namespace, cached);
      }
      return { shard: s.namespace, count, items: cached.items };
    });
  }
}

function deadLetterRow(d: ResourceLeaseDeadLetterItem): DeadLetterRow {
  return {
    sequenceId: d.sequenceId,
    resourceType: d.payload.resourceType,
    resourceId: d.payload.resourceId,
    reason: d.reason,
    attempt: d.attempt,
    enqueuedAt: new Date(d.enqueuedAt).toISOString(),
    deadLetteredAt: new Date(d.deadLetteredAt).toISOString(),
    ...(d.lastError?.message ? { error: d.lastError.message } : {}),
    ...(d.lastError?.code ? { errorCode: d.lastError.code } : {}),
  };
}

/** What {@link meshState} adds besides the node: the charts' history and the dead letters. */
export interface MeshStateExtras {
  readonly history: MeshHistory;
  readonly deadLetters: DeadLetterView;
  /** Samples of history to include. @defaultValue all */
  readonly historyLimit?: number;
}

/** A dispatch key as the live page lists it: the queue's `keyStats` row and its shard. */
export interface BusyKeyRow {
  readonly shard: string;
  readonly key: string;
  readonly active: number;
  readonly pending: number;
}

/** The busiest `top` dispatch keys of all shards together (each shard's own busiest, merged), busiest first. */
export function busiestKeys(node: DispatcherNode, top = 10): BusyKeyRow[] {
  const rows = node.shards.flatMap((s) => s.durable.queue.keyStats({ top }).map((k) => ({ shard: s.namespace, ...k })));
  rows.sort((a, b) => b.active + b.pending - (a.active + a.pending) || a.key.localeCompare(b.key));
  return rows.slice(0, top);
}

/** Every shard's cron schedules: id, expression, the last slot that fired and the next one. */
export function scheduleRows(node: DispatcherNode) {
  return node.shards.flatMap((s) =>
    s.durable.queue.schedules.list().map((x) => ({
      shard: s.namespace,
      id: x.id,
      cron: x.cron,
      timezone: x.timezone,
      backfill: x.backfill,
      ...(x.lastSlotAt !== undefined ? { lastSlotAt: new Date(x.lastSlotAt).toISOString() } : {}),
      ...(x.nextSlotAt !== undefined ? { nextSlotAt: new Date(x.nextSlotAt).toISOString() } : {}),
    })),
  );
}

/** The whole state the live page shows (also `GET /demo/state`). */
export function meshState(node: DispatcherNode, extras: MeshStateExtras): Record<string, unknown> {
  return {
    observedAt: new Date().toISOString(),
    health: PeerLeaseHealthDiagnostics.fromSnapshots(node.tracker.snapshot()),
    transports: node.transports.snapshot(),
    shards: node.shards.map((s) => {
      const stats = s.durable.queue.stats();
      const latest = s.durable.queue.backpressure?.latest;
      return {
        shard: s.shard,
        namespace: s.namespace,
        pending: stats.pendingCount,
        delayed: stats.delayedCount,
        active: stats.activeLeaseCount,
        deadLetters: stats.deadLetterCount,
        state: stats.state,
        lastEventSequence: stats.lastEventSequence,
        backpressure: {
          active: latest?.isActive ?? false,
          throttling: s.limiter.isBackpressureActive,
          highWatermark: latest?.highWatermark,
          lowWatermark: latest?.lowWatermark,
          since: latest ? new Date(latest.observedAt).toISOString() : undefined,
        },
      };
    }),
    replication: node.shards.map(replicationOf),
    keys: busiestKeys(node),
    schedules: scheduleRows(node),
    deadLetters: extras.deadLetters.list(node),
    history: extras.history.latest(extras.historyLimit),
    eventsSeen: node.feed.count,
    events: node.feed.latest(40),
    catalogs: node.catalog.view(25),
  };
}

/** The last `limit` events of every shard, read from the durable SQLite logs, newest first. */
export async function recentLogEvents(node: DispatcherNode, limit: number): Promise<unknown[]> {
  const rows: { shard: string; event: ResourceLeaseReplicationEvent }[] = [];
  for (const s of node.shards) {
    const last = await s.durable.replicator.lastSequence();
    for await (const event of s.durable.replicator.read(Math.max(1, last - limit + 1), limit)) {
      rows.push({ shard: s.namespace, event });
    }
  }
  rows.sort((a, b) => b.event.timestamp - a.event.timestamp || b.event.sequenceNumber - a.event.sequenceNumber);
  return rows.slice(0, limit).map((r) => ({ shard: r.shard, ...encodeReplicationEvent(r.event) }));
}
