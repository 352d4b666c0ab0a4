import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";

/** One line of the live event feed. */
export interface FeedEntry {
  readonly shard: string;
  readonly sequenceNumber: number;
  /** The item the event is about (the live page opens its lease history), when it is about one. */
  readonly sequenceId?: number;
  readonly eventType: string;
  readonly timestamp: number;
  readonly peerId?: string;
  readonly resourceId?: string;
  readonly attempt?: number;
  readonly error?: string;
}

const deadLetterEvents = new Set(["DeadLettered", "Redriven", "DeadLetterPurged"]);

const itemOf = (event: ResourceLeaseReplicationEvent): number | undefined =>
  event.item?.sequenceId ?? event.ownership?.sequenceId;

/**
 * A bounded ring of the latest queue events of every shard (for the live page), with running totals per event type
 * (the throughput chart's enqueues and completions) and a per-shard counter of dead-letter changes (so the
 * dead-letter list is read again only when it changed).
 */
export class EventFeed {
  private readonly entries: FeedEntry[] = [];
  private readonly byType = new Map<string, number>();
  private readonly deadLetterMoves = new Map<string, number>();
  private total = 0;

  constructor(private readonly capacity: number) {}

  /** Adds an event (a queue observer). */
  push(shard: string, event: ResourceLeaseReplicationEvent): void {
    this.total++;
    this.byType.set(event.eventType, (this.byType.get(event.eventType) ?? 0) + 1);
    if (deadLetterEvents.has(event.eventType))
      this.deadLetterMoves.set(shard, (this.deadLetterMoves.get(shard) ?? 0) + 1);
    const sequenceId = itemOf(event);
    this.entries.push({
      shard,
      sequenceNumber: event.sequenceNumber,
      ...(sequenceId !== undefined ? { sequenceId } : {}),
      eventType: event.eventType,
      timestamp: event.timestamp,
      ...(event.peerId ? { peerId: event.peerId } : {}),
      ...(event.payload?.resourceId ? { resourceId: event.payload.resourceId } : {}),
      ...(event.ownership ? { attempt: event.ownership.attempt } : {}),
      ...(event.error?.message ? { error: event.error.message } : {}),
    });
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
  }

  /** Events seen since start. */
  get count(): number {
    return this.total;
  }

  /** Events of `eventType` seen since start, every shard together. */
  countOf(eventType: string): number {
    return this.byType.get(eventType) ?? 0;
  }

  /** How many times `shard`'s dead letters changed (dead-lettered, redriven, purged) since start. */
  deadLetterChanges(shard: string): number {
    return this.deadLetterMoves.get(shard) ?? 0;
  }

  /** The newest `limit` entries, newest first. */
  latest(limit: number): FeedEntry[] {
    return this.entries.slice(-limit).reverse();
  }
}
