import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import type { ResourceLeasePendingItem } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { MinHeap } from "../util/heap.js";
import { IdTable } from "../util/id-table.js";
import { MapFront } from "../util/map-front.js";
import type { ItemHistory } from "./history.js";
import { IdRanges } from "./id-ranges.js";
import { type DispatchRules, PendingItems } from "./pending.js";
import { type ItemRecord, inLockDelay, type LeaseRecord, newItemRecord, payloadOf } from "./records.js";
import { ScheduleMeta, type ScheduleRecord, scheduleFromEvent } from "./schedules.js";

/** A lease ended by a cancel: its holder's calls are answered `resourcelease.lease.cancelled` until it would expire. */
export interface CancelledLease {
  readonly sequenceId: number;
  readonly fencingToken: number;
  readonly expiresAt: number;
}

/** A timed entry: a lease deadline or the end of an item's retry backoff. Stale entries are skipped lazily. */
export interface ScheduleEntry {
  readonly at: number;
  readonly lease?: LeaseRecord;
  readonly item?: ItemRecord;
}

function mismatch(event: ResourceLeaseReplicationEvent, reason: string): never {
  throw new OmniRelayError({
    status: "failed-precondition",
    code: ErrorCodes.replication.replayMismatch,
    message: `Event ${event.sequenceNumber} (${event.eventType}) does not fit the queue state: ${reason}.`,
    metadata: { sequenceNumber: String(event.sequenceNumber), eventType: event.eventType },
  });
}

/**
 * The queue's whole state and the one function that changes it: {@link QueueState.apply}. Live operations build an
 * event and apply it; a rebuild applies the same events from a log. So a queue rebuilt from its event stream is
 * identical to the original by construction.
 */
export class QueueState {
  readonly items = new IdTable<ItemRecord>();
  readonly leases = new Map<string, LeaseRecord>();
  readonly dead = new Map<number, ItemRecord>();
  readonly pending: PendingItems;
  /** Lease deadlines. */
  readonly schedule = new MinHeap<ScheduleEntry>((a, b) => a.at < b.at);
  /**
   * Due times of delayed items (retry backoffs and `notBefore`), apart from lease deadlines so that granting and ending
   * leases never walks a heap of a million delayed items.
   */
  readonly delayed = new MinHeap<ScheduleEntry>((a, b) => a.at < b.at);
  /** requestId → item sequenceId, with the time the entry expires. Insertion-ordered, so pruning pops the front. */
  readonly requestIds = new Map<string, { sequenceId: number; expiresAt: number }>();
  private readonly requestIdsFront = new MapFront(this.requestIds);
  /**
   * Ids at or below `lastSequenceId` that a restore may still give an item: ids a restore skipped over (never used)
   * and ids of this queue's own drained items. Any other id at or below `lastSequenceId` was used by an item.
   */
  readonly reusableIds = new IdRanges();
  /** Cron schedules by id. */
  readonly schedules = new Map<string, ScheduleRecord>();
  /** Leases ended by a cancel, by lease id (insertion-ordered: the oldest are pruned first). */
  readonly cancelledLeases = new Map<string, CancelledLease>();
  delayedCount = 0;
  /** Payload bytes of pending, delayed and leased items. */
  bytesHeld = 0;
  /** Payload bytes of dead letters. */
  deadBytes = 0;
  lastEventSequence = 0;
  /** Hash of the last event (`hashReplicationEvent`), the next event's `previousHash`; undefined before the first. */
  lastEventHash: string | undefined;
  lastFencingToken = 0;
  lastSequenceId = 0;
  mode: "running" | "draining" = "running";

  constructor(
    rules: DispatchRules,
    /** How long, and how many, request ids are remembered. */
    private readonly idempotency: { readonly windowMs: number; readonly maxEntries: number },
    /** Every item's story, built from the events applied here (live and replayed alike); off when undefined. */
    readonly history?: ItemHistory,
  ) {
    this.pending = new PendingItems(rules);
  }

  /**
   * The delayed items, in no particular order: found among all items (the delay heap keeps stale entries), and not
   * looked for when there are none.
   */
  delayedItems(): ItemRecord[] {
    const out: ItemRecord[] = [];
    if (this.delayedCount > 0) for (const item of this.items.values()) if (item.state === "delayed") out.push(item);
    return out;
  }

  /** Pending + delayed: what counts against capacity and watermarks. */
  get queuedCount(): number {
    return this.pending.size + this.delayedCount;
  }

  /** Applies one event. Throws `resourcelease.replication.replay_mismatch` when it does not fit. */
  apply(event: ResourceLeaseReplicationEvent): void {
    if (event.sequenceNumber !== this.lastEventSequence + 1) {
      mismatch(event, `expected sequence ${this.lastEventSequence + 1}`);
    }
    this.pending.unblockDue(event.timestamp);
    switch (event.eventType) {
      case "Enqueue": {
        const item = event.item ?? mismatch(event, "no item");
        if (this.items.has(item.sequenceId) || this.dead.has(item.sequenceId)) mismatch(event, "duplicate sequenceId");
        this.addPending(item, event.timestamp);
        this.slotFired(event);
        this.rememberRequestId(item.payload.requestId, item.sequenceId, event.timestamp);
        break;
      }
      case "LeaseGranted": {
        const token = event.ownership ?? mismatch(event, "no ownership");
        const item = this.items.get(token.sequenceId);
        if (item?.state !== "pending") mismatch(event, "item is not pending");
        if (token.fencingToken <= this.lastFencingToken) mismatch(event, "fencing token did not increase");
        this.pending.remove(item);
        this.pending.leaseStarted(item, event.timestamp);
        item.state = "active";
        item.attempt = token.attempt;
        const lease: LeaseRecord = {
          token,
          item,
          payload: event.payload ?? payloadOf(item),
          peerId: event.peerId,
          principal: event.principal,
          expiresAt: event.leaseExpiresAt ?? mismatch(event, "no leaseExpiresAt"),
          active: true,
        };
        item.lease = lease;
        this.leases.set(token.leaseId, lease);
        this.lastFencingToken = token.fencingToken;
        this.schedule.push({ at: lease.expiresAt, lease });
        break;
      }
      case "Heartbeat": {
        const lease = this.activeLease(event);
        lease.expiresAt = event.leaseExpiresAt ?? mismatch(event, "no leaseExpiresAt");
        this.schedule.push({ at: lease.expiresAt, lease });
        break;
      }
      case "Completed": {
        const item =
          event.metadata["lease.late"] === "lock_delay" ? this.lateCompleted(event) : this.endLease(event).item;
        item.state = "dead";
        this.items.delete(item.sequenceId);
        this.bytesHeld -= item.bytes;
        break;
      }
      case "Failed":
      case "LeaseExpired": {
        const lease = this.endLease(event);
        const item = lease.item;
        item.lastOwnershipToken = lease.token;
        if (event.error) item.lastError = event.error;
        if (event.item) {
          // Requeued outcome: wait for the backoff, then a Requeued event moves it to pending.
          item.attempt = event.item.attempt;
          item.availableAt = event.item.availableAt ?? event.timestamp;
          item.state = "delayed";
          this.delayedCount++;
          this.delayed.push({ at: item.availableAt, item });
        } else {
          item.state = "failed";
        }
        break;
      }
      case "Requeued": {
        const id = event.item?.sequenceId ?? mismatch(event, "no item");
        const item = this.items.get(id);
        if (item?.state !== "delayed") mismatch(event, "item is not waiting for a requeue");
        this.delayedCount--;
        item.availableAt = undefined;
        item.state = "pending";
        this.pending.push(item);
        break;
      }
      case "DeadLettered": {
        const id = event.item?.sequenceId ?? mismatch(event, "no item");
        const item = this.items.get(id);
        if (!item || item.state === "active") mismatch(event, "item cannot be dead-lettered");
        this.detach(item);
        this.items.delete(id);
        this.bytesHeld -= item.bytes;
        this.deadBytes += item.bytes;
        item.state = "dead";
        if (event.error) item.lastError = event.error;
        item.deadLetteredAt = event.timestamp;
        item.deadLetterReason = (event.metadata["deadletter.reason"] as ItemRecord["deadLetterReason"]) ?? "failed";
        this.dead.set(id, item);
        break;
      }
      case "Redriven": {
        const src = event.item ?? mismatch(event, "no item");
        const item = this.dead.get(src.sequenceId) ?? mismatch(event, "item is not dead-lettered");
        this.dead.delete(src.sequenceId);
        this.deadBytes -= item.bytes;
        this.bytesHeld += item.bytes;
        item.attempt = src.attempt;
        item.availableAt = undefined;
        item.state = "pending";
        this.items.set(item.sequenceId, item);
        this.pending.push(item);
        break;
      }
      case "DeadLetterPurged": {
        const id = event.item?.sequenceId ?? mismatch(event, "no item");
        const item = this.dead.get(id) ?? mismatch(event, "item is not dead-lettered");
        this.dead.delete(id);
        this.deadBytes -= item.bytes;
        break;
      }
      case "DrainSnapshot": {
        for (const drained of event.items ?? []) {
          const item = this.items.get(drained.sequenceId);
          if (!item || (item.state !== "pending" && item.state !== "delayed"))
            mismatch(event, "drained item not queued");
          this.detach(item);
          this.items.delete(item.sequenceId);
          this.bytesHeld -= item.bytes;
          item.state = "dead";
          this.reusableIds.add(item.sequenceId);
        }
        this.mode = "draining";
        break;
      }
      case "RestoreSnapshot": {
        for (const restored of event.items ?? []) {
          if (this.items.has(restored.sequenceId) || this.dead.has(restored.sequenceId)) {
            mismatch(event, `restored sequenceId ${restored.sequenceId} already present`);
          }
          const id = restored.sequenceId;
          if (id > this.lastSequenceId) this.reusableIds.add(this.lastSequenceId + 1, id - 1);
          else this.reusableIds.delete(id);
          // A restored item waits for its availableAt (a retry's backoff, as `drain` returned it) as for its notBefore.
          this.addPending(restored, event.timestamp);
          // A renumbered item keeps its request id's de-duplication, now pointing at its new id (unless the id
          // still names a live item of this queue).
          const requestId = restored.payload.requestId;
          const remembered = requestId === undefined ? undefined : this.requestIds.get(requestId);
          if (remembered && !this.items.has(remembered.sequenceId)) remembered.sequenceId = restored.sequenceId;
          // One this queue does not remember (items moved here from another node) is remembered from now on, as if
          // enqueued here: a producer's retry of the enqueue then finds the item instead of adding it twice.
          if (!remembered) this.rememberRequestId(requestId, restored.sequenceId, event.timestamp);
        }
        this.mode = "running";
        break;
      }
      case "Cancelled":
        this.cancel(event);
        break;
      case "ScheduleUpserted": {
        const record = scheduleFromEvent(event) ?? mismatch(event, "no well-formed schedule");
        const previous = this.schedules.get(record.definition.id);
        if (previous?.lastSlotAt !== undefined) record.lastSlotAt = previous.lastSlotAt;
        record.firedThrough = Math.max(record.upsertedAt, previous?.firedThrough ?? 0);
        this.schedules.set(record.definition.id, record);
        break;
      }
      case "ScheduleRemoved": {
        const id = event.metadata[ScheduleMeta.id];
        if (id === undefined || !this.schedules.delete(id)) mismatch(event, "no such schedule");
        break;
      }
      case "LeaseRefused":
        // Audit only: a stale caller was refused; nothing changes but the item's history.
        if (!event.ownership) mismatch(event, "no ownership");
        break;
      default:
        mismatch(event, "unknown event type");
    }
    this.lastEventSequence = event.sequenceNumber;
    this.history?.record(event);
  }

  /** Drops memories of cancelled leases that would have expired by `now` (their tokens are fenced anyway). */
  pruneCancelledLeases(now: number): void {
    for (const [leaseId, entry] of this.cancelledLeases) {
      if (entry.expiresAt > now) break;
      this.cancelledLeases.delete(leaseId);
    }
  }

  private cancel(event: ResourceLeaseReplicationEvent): void {
    this.pruneCancelledLeases(event.timestamp);
    let item: ItemRecord;
    if (event.ownership) {
      const lease = this.endLease(event);
      item = lease.item;
      this.cancelledLeases.set(lease.token.leaseId, {
        sequenceId: lease.token.sequenceId,
        fencingToken: lease.token.fencingToken,
        expiresAt: lease.expiresAt,
      });
    } else {
      const id = event.item?.sequenceId ?? mismatch(event, "no item");
      const found = this.items.get(id);
      if (!found || (found.state !== "pending" && found.state !== "delayed")) mismatch(event, "item is not queued");
      item = found;
      this.detach(item);
    }
    this.items.delete(item.sequenceId);
    this.bytesHeld -= item.bytes;
    item.state = "dead";
  }

  /** An Enqueue fired by a schedule's slot: that slot and the ones before it never fire again. */
  private slotFired(event: ResourceLeaseReplicationEvent): void {
    const id = event.metadata[ScheduleMeta.id];
    const record = id === undefined ? undefined : this.schedules.get(id);
    if (!record) return;
    const slot = Number(event.metadata[ScheduleMeta.slot]);
    if (!Number.isSafeInteger(slot)) mismatch(event, "no schedule.slot");
    if (slot > record.firedThrough) record.firedThrough = slot;
    if (record.lastSlotAt === undefined || slot > record.lastSlotAt) record.lastSlotAt = slot;
    record.nextAt = undefined;
  }

  /** Removes expired request-id entries (the map is insertion-ordered by expiry). */
  pruneRequestIds(now: number): void {
    this.requestIdsFront.popWhile((entry) => entry.expiresAt <= now);
  }

  /** Remembers `requestId` (when there is one) as item `sequenceId`'s for the idempotency window from `now`. */
  private rememberRequestId(requestId: string | undefined, sequenceId: number, now: number): void {
    const { windowMs, maxEntries } = this.idempotency;
    if (requestId === undefined || windowMs <= 0) return;
    // Re-inserted, so the map stays in expiry order (the oldest first) for the purge.
    this.requestIds.delete(requestId);
    this.requestIds.set(requestId, { sequenceId, expiresAt: now + windowMs });
    // Past the bound the oldest are forgotten early; applied events decide it, so a replay forgets the same ones.
    if (this.requestIds.size > maxEntries) this.requestIdsFront.popWhile(() => this.requestIds.size > maxEntries);
  }

  /** Adds an item at `now`: pending, or delayed until the later of its `notBefore` and `availableAt`. */
  private addPending(item: ResourceLeasePendingItem, now: number): void {
    const record = newItemRecord(item);
    record.availableAt = undefined;
    this.items.set(record.sequenceId, record);
    const due = Math.max(
      record.meta.notBefore ?? Number.NEGATIVE_INFINITY,
      item.availableAt ?? Number.NEGATIVE_INFINITY,
    );
    if (due > now) {
      // Scheduled: waits in the timer heap, not the pending set; a Requeued event makes it pending when due.
      record.state = "delayed";
      record.availableAt = due;
      this.delayedCount++;
      this.delayed.push({ at: due, item: record });
    } else {
      this.pending.push(record);
    }
    this.bytesHeld += record.bytes;
    if (record.sequenceId > this.lastSequenceId) this.lastSequenceId = record.sequenceId;
  }

  private activeLease(event: ResourceLeaseReplicationEvent): LeaseRecord {
    const token = event.ownership ?? mismatch(event, "no ownership");
    const lease = this.leases.get(token.leaseId);
    if (!lease || lease.token.fencingToken !== token.fencingToken) mismatch(event, "lease is not active");
    return lease;
  }

  private endLease(event: ResourceLeaseReplicationEvent): LeaseRecord {
    const lease = this.activeLease(event);
    lease.active = false;
    this.leases.delete(lease.token.leaseId);
    lease.item.lease = undefined;
    this.pending.leaseEnded(lease.item);
    return lease;
  }

  /** The item of a completion accepted during its lock-delay, taken out of the delayed set. */
  private lateCompleted(event: ResourceLeaseReplicationEvent): ItemRecord {
    const token = event.ownership ?? mismatch(event, "no ownership");
    const item = this.items.get(token.sequenceId);
    if (!item || !inLockDelay(item, token)) mismatch(event, "item is not in a lock-delay for this token");
    this.detach(item);
    return item;
  }

  /** Takes a queued item out of the pending list or the delayed set. */
  private detach(item: ItemRecord): void {
    if (item.state === "pending") this.pending.remove(item);
    else if (item.state === "delayed") {
      this.delayedCount--;
      item.availableAt = undefined;
    }
  }
}
