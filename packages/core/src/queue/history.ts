import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type { ResourceLeasePendingItem } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { ResourceLeaseHistoryEntry, ResourceLeaseItemHistory } from "../wire/history.js";

/** Which item `history` tells: by sequence id, or by the request id it was enqueued with. */
export interface ResourceLeaseHistoryTarget {
  readonly sequenceId?: number;
  readonly requestId?: string;
}

/** The bounds of {@link ItemHistory}. */
export interface ItemHistoryBounds {
  /** Most items whose stories are kept; the least recently touched story leaves first. */
  readonly maxItems: number;
  /** Most entries of one story; past it the oldest entries after the first leave. */
  readonly maxEntries: number;
}

type Entry = { -readonly [K in keyof ResourceLeaseHistoryEntry]: ResourceLeaseHistoryEntry[K] };

interface Story {
  readonly sequenceId: number;
  requestId?: string;
  readonly entries: Entry[];
  dropped: number;
}

/** Metadata every event carries that says nothing about the item. */
const COUNTERS = new Set(["queue.pending", "queue.active"]);

/**
 * Every item's story, built from the replication events the queue applies — live, and replayed from a log — so a node
 * rebuilt from its log tells the same stories for what the log still holds (not what came before a snapshot it
 * started from). Bounded: at most `maxItems` stories (the one touched longest ago leaves first) of at most
 * `maxEntries` entries. Runs of heartbeats of one lease fold into one entry. Internal to the queue.
 */
export class ItemHistory {
  private readonly stories = new Map<number, Story>();
  private readonly byRequestId = new Map<string, number>();

  constructor(private readonly bounds: ItemHistoryBounds) {}

  /** Adds an applied event to the stories of the items it is about. */
  record(event: ResourceLeaseReplicationEvent): void {
    if (event.ownership) {
      this.add(event.ownership.sequenceId, event);
    } else if (event.item) {
      this.add(event.item.sequenceId, event, event.item);
    } else if (event.items) {
      for (const item of event.items) this.add(item.sequenceId, event, item);
    }
  }

  /**
   * The story of one item.
   * @throws OmniRelayError not-found `resourcelease.item.not_found` when the history holds none for it.
   */
  get(target: ResourceLeaseHistoryTarget): ResourceLeaseItemHistory {
    const id =
      target.sequenceId ?? (target.requestId !== undefined ? this.byRequestId.get(target.requestId) : undefined);
    const story = id === undefined ? undefined : this.stories.get(id);
    if (!story) {
      throw new OmniRelayError({
        status: "not-found",
        code: ErrorCodes.resourceLease.itemNotFound,
        message: "The queue's history holds no item of that id (never enqueued here, or its story aged out).",
        metadata:
          target.sequenceId !== undefined
            ? { sequenceId: String(target.sequenceId) }
            : { requestId: target.requestId ?? "" },
      });
    }
    return {
      sequenceId: story.sequenceId,
      ...(story.requestId !== undefined ? { requestId: story.requestId } : {}),
      entries: story.entries.map((e) => ({ ...e })),
      droppedEntries: story.dropped,
    };
  }

  /** How many stories are held. */
  get size(): number {
    return this.stories.size;
  }

  private add(sequenceId: number, event: ResourceLeaseReplicationEvent, item?: ResourceLeasePendingItem): void {
    const story = this.story(sequenceId, item?.payload.requestId);
    const last = story.entries.at(-1);
    const token = event.ownership;
    if (
      event.eventType === "Heartbeat" &&
      last?.eventType === "Heartbeat" &&
      token !== undefined &&
      last.fencingToken === token.fencingToken
    ) {
      last.heartbeatCount = (last.heartbeatCount ?? 1) + 1;
      last.lastHeartbeatAt = event.timestamp;
      if (event.leaseExpiresAt !== undefined) last.leaseExpiresAt = event.leaseExpiresAt;
      return;
    }
    story.entries.push(entryOf(event, item));
    if (story.entries.length > this.bounds.maxEntries) {
      story.entries.splice(1, 1);
      story.dropped++;
    }
  }

  /** The item's story, made the most recently touched; a new one (evicting the oldest) when there is none. */
  private story(sequenceId: number, requestId: string | undefined): Story {
    let story = this.stories.get(sequenceId);
    if (story) this.stories.delete(sequenceId);
    else {
      story = { sequenceId, entries: [], dropped: 0 };
      this.evict();
    }
    this.stories.set(sequenceId, story);
    if (requestId !== undefined && story.requestId === undefined) {
      story.requestId = requestId;
      this.byRequestId.set(requestId, sequenceId);
    }
    return story;
  }

  private evict(): void {
    while (this.stories.size >= this.bounds.maxItems) {
      const oldest = this.stories.values().next().value as Story;
      this.stories.delete(oldest.sequenceId);
      const rid = oldest.requestId;
      if (rid !== undefined && this.byRequestId.get(rid) === oldest.sequenceId) this.byRequestId.delete(rid);
    }
  }
}

function entryOf(event: ResourceLeaseReplicationEvent, item: ResourceLeasePendingItem | undefined): Entry {
  const e: Entry = { eventType: event.eventType, sequenceNumber: event.sequenceNumber, at: event.timestamp };
  if (event.peerId !== undefined) e.peerId = event.peerId;
  if (event.principal !== undefined) e.principal = event.principal;
  const attempt = event.ownership?.attempt ?? item?.attempt;
  if (attempt !== undefined) e.attempt = attempt;
  if (event.ownership) e.fencingToken = event.ownership.fencingToken;
  if (event.leaseExpiresAt !== undefined) e.leaseExpiresAt = event.leaseExpiresAt;
  if (event.eventType === "Heartbeat") {
    e.heartbeatCount = 1;
    e.lastHeartbeatAt = event.timestamp;
  }
  const error = event.error ?? (event.eventType === "DeadLettered" ? item?.lastError : undefined);
  if (error) e.error = error;
  let metadata: Record<string, string> | undefined;
  const source = event.metadata;
  for (const k in source) {
    if (COUNTERS.has(k) || !Object.hasOwn(source, k)) continue;
    metadata ??= {};
    metadata[k] = source[k] as string;
  }
  if (metadata) e.metadata = metadata;
  return e;
}
