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

/**
 * A stored entry: every field of {@link ResourceLeaseHistoryEntry} always present (undefined when it does not apply),
 * so that one object can be refilled for another event. {@link ItemHistory.get} copies out the fields that are set.
 */
type Entry = {
  -readonly [K in keyof Required<ResourceLeaseHistoryEntry>]: K extends "eventType" | "sequenceNumber" | "at"
    ? ResourceLeaseHistoryEntry[K]
    : ResourceLeaseHistoryEntry[K] | undefined;
};

interface Story {
  sequenceId: number;
  requestId: string | undefined;
  readonly entries: Entry[];
  dropped: number;
  /** The story touched just before this one (undefined: the oldest) and just after it (undefined: the newest). */
  older: Story | undefined;
  newer: Story | undefined;
}

/** Most entries and stories kept for reuse (an evicted story's, refilled for the next ones). */
const SPARE_ENTRIES = 4096;
const SPARE_STORIES = 256;

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
  /**
   * The stories from the least to the most recently touched, linked through {@link Story.older}/{@link Story.newer}.
   * Not the Map's own order: a Map leaves a hole for every key deleted until it rehashes, and reading its first entry
   * walks past them, so evicting the oldest cost ~0.6 µs where the list's head costs ~0.1 µs (every new item evicts).
   */
  private oldest: Story | undefined;
  private newest: Story | undefined;
  private readonly byRequestId = new Map<string, number>();
  /**
   * Entries and stories of evicted stories, refilled for new ones: a busy queue evicts a story for every item it
   * takes, and entries that lived for a thousand items had left the young generation, so each one became old-space
   * garbage (measured: the history's collection cost more than its own code).
   */
  private readonly spareEntries: Entry[] = [];
  private readonly spareStories: Story[] = [];

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
      entries: story.entries.map(copyOut),
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
    story.entries.push(fillEntry(this.spareEntries.pop() ?? blankEntry(), event, item));
    if (story.entries.length > this.bounds.maxEntries) {
      const [dropped] = story.entries.splice(1, 1);
      if (dropped) this.spare(dropped);
      story.dropped++;
    }
  }

  /** The item's story, made the most recently touched; a new one (evicting the oldest) when there is none. */
  private story(sequenceId: number, requestId: string | undefined): Story {
    let story = this.stories.get(sequenceId);
    if (story) {
      if (story === this.newest) return this.named(story, requestId);
      this.unlink(story);
    } else {
      this.evict();
      story = this.spareStories.pop() ?? {
        sequenceId,
        requestId: undefined,
        entries: [],
        dropped: 0,
        older: undefined,
        newer: undefined,
      };
      story.sequenceId = sequenceId;
      this.stories.set(sequenceId, story);
    }
    story.older = this.newest;
    story.newer = undefined;
    if (this.newest) this.newest.newer = story;
    else this.oldest = story;
    this.newest = story;
    return this.named(story, requestId);
  }

  /** Records the request id a story's item was enqueued with, the first time one is seen; returns the story. */
  private named(story: Story, requestId: string | undefined): Story {
    if (requestId !== undefined && story.requestId === undefined) {
      story.requestId = requestId;
      this.byRequestId.set(requestId, story.sequenceId);
    }
    return story;
  }

  /** Takes a story out of the list (it stays in the map). */
  private unlink(story: Story): void {
    if (story.older) story.older.newer = story.newer;
    else this.oldest = story.newer;
    if (story.newer) story.newer.older = story.older;
    else this.newest = story.older;
    story.older = story.newer = undefined;
  }

  private evict(): void {
    while (this.stories.size >= this.bounds.maxItems && this.oldest) {
      const oldest = this.oldest;
      this.unlink(oldest);
      this.stories.delete(oldest.sequenceId);
      const rid = oldest.requestId;
      if (rid !== undefined && this.byRequestId.get(rid) === oldest.sequenceId) this.byRequestId.delete(rid);
      for (const entry of oldest.entries) this.spare(entry);
      if (this.spareStories.length < SPARE_STORIES) {
        oldest.entries.length = 0;
        oldest.requestId = undefined;
        oldest.dropped = 0;
        this.spareStories.push(oldest);
      }
    }
  }

  /** Keeps an entry no story holds any more for reuse (its references dropped, so it pins nothing). */
  private spare(entry: Entry): void {
    if (this.spareEntries.length >= SPARE_ENTRIES) return;
    entry.peerId = entry.principal = undefined;
    entry.error = undefined;
    entry.metadata = undefined;
    this.spareEntries.push(entry);
  }
}

function blankEntry(): Entry {
  return {
    eventType: "Enqueue",
    sequenceNumber: 0,
    at: 0,
    peerId: undefined,
    principal: undefined,
    attempt: undefined,
    fencingToken: undefined,
    leaseExpiresAt: undefined,
    heartbeatCount: undefined,
    lastHeartbeatAt: undefined,
    error: undefined,
    metadata: undefined,
  };
}

/** Sets every field of `e` from the event (the ones that do not apply to undefined); returns `e`. */
function fillEntry(e: Entry, event: ResourceLeaseReplicationEvent, item: ResourceLeasePendingItem | undefined): Entry {
  const heartbeat = event.eventType === "Heartbeat";
  let metadata: Record<string, string> | undefined;
  const source = event.metadata;
  for (const k in source) {
    if (COUNTERS.has(k) || !Object.hasOwn(source, k)) continue;
    metadata ??= {};
    metadata[k] = source[k] as string;
  }
  e.eventType = event.eventType;
  e.sequenceNumber = event.sequenceNumber;
  e.at = event.timestamp;
  e.peerId = event.peerId;
  e.principal = event.principal;
  e.attempt = event.ownership?.attempt ?? item?.attempt;
  e.fencingToken = event.ownership?.fencingToken;
  e.leaseExpiresAt = event.leaseExpiresAt;
  e.heartbeatCount = heartbeat ? 1 : undefined;
  e.lastHeartbeatAt = heartbeat ? event.timestamp : undefined;
  e.error = event.error ?? (event.eventType === "DeadLettered" ? item?.lastError : undefined);
  e.metadata = metadata;
  return e;
}

/** An entry as `history` answers it: only the fields that are set. */
function copyOut(e: Entry): ResourceLeaseHistoryEntry {
  const out: { -readonly [K in keyof ResourceLeaseHistoryEntry]: ResourceLeaseHistoryEntry[K] } = {
    eventType: e.eventType,
    sequenceNumber: e.sequenceNumber,
    at: e.at,
  };
  for (const key of OPTIONAL) if (e[key] !== undefined) (out as Record<string, unknown>)[key] = e[key];
  return out;
}

const OPTIONAL = [
  "peerId",
  "principal",
  "attempt",
  "fencingToken",
  "leaseExpiresAt",
  "heartbeatCount",
  "lastHeartbeatAt",
  "error",
  "metadata",
] as const satisfies readonly (keyof ResourceLeaseHistoryEntry)[];
