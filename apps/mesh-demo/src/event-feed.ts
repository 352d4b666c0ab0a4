import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";

/** One line of the live event feed. */
export interface FeedEntry {
  readonly shard: string;
  readonly sequenceNumber: number;
  readonly eventType: string;
  readonly timestamp: number;
  readonly peerId?: string;
  readonly resourceId?: string;
  readonly attempt?: number;
  readonly error?: string;
}

/** A bounded ring of the latest queue events of every shard (for the live page). */
export class EventFeed {
  private readonly entries: FeedEntry[] = [];
  private total = 0;

  constructor(private readonly capacity: number) {}

  /** Adds an event (a queue observer). */
  push(shard: string, event: ResourceLeaseReplicationEvent): void {
    this.total++;
    this.entries.push({
      shard,
      sequenceNumber: event.sequenceNumber,
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

  /** The newest `limit` entries, newest first. */
  latest(limit: number): FeedEntry[] {
    return this.entries.slice(-limit).reverse();
  }
}
