import { ErrorCodes, OmniRelayError, type ResourceLeaseReplicationEvent } from "@omnirelay/core";

/** What a full outbox does to `publish`: wait for room, or accept and report lagging up to a hard cap. */
export type GrpcReplicatorOverflow = "block" | "lag";

interface Waiter {
  readonly last: number;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

interface Admission {
  readonly events: readonly ResourceLeaseReplicationEvent[];
}

/**
 * The client's bounded outbox of unacknowledged events, in sequence order, plus the publishes waiting for their
 * acknowledgement and (in `'block'` mode) the publishes waiting for room. Internal.
 */
export class Outbox {
  private entries: ResourceLeaseReplicationEvent[] = [];
  private start = 0;
  private readonly waiters: Waiter[] = [];
  private readonly admissions: Admission[] = [];
  private queuedEvents = 0;
  private reserved = 0;
  private ackedSeq = 0;
  private isLagging = false;

  constructor(
    private readonly limits: { max: number; hardCap: number; overflow: GrpcReplicatorOverflow },
    private readonly onAdmit: () => void,
  ) {}

  /** Events in the outbox (sent or not) plus events waiting for room. */
  get pending(): number {
    return this.entries.length - this.start + this.queuedEvents;
  }

  /** Highest sequence number handed to `publish`. */
  get head(): number {
    return this.reserved;
  }

  /** Highest sequence number the hub acknowledged. */
  get acked(): number {
    return this.ackedSeq;
  }

  /** True in `'lag'` mode from when the outbox passes `max` until it drains to half of it. */
  get lagging(): boolean {
    return this.isLagging;
  }

  /**
   * Accepts a publish: checks the order, then admits it (or queues it for room) and returns the promise of its
   * acknowledgement.
   * @throws OmniRelayError failed-precondition `resourcelease.replication.out_of_order`; resource-exhausted
   *   `resourcelease.replication.grpc.outbox_full` at the hard cap in `'lag'` mode.
   */
  offer(events: readonly ResourceLeaseReplicationEvent[]): Promise<void> {
    let previous = this.reserved;
    for (const event of events) {
      if (!Number.isSafeInteger(event?.sequenceNumber) || event.sequenceNumber <= previous) {
        throw new OmniRelayError({
          status: "failed-precondition",
          code: ErrorCodes.replication.outOfOrder,
          message: `Event ${String(event?.sequenceNumber)} does not follow ${previous}; publish events in sequence order.`,
          metadata: { "replication.sequence": String(event?.sequenceNumber), "replication.last": String(previous) },
        });
      }
      previous = event.sequenceNumber;
    }
    const { max, hardCap, overflow } = this.limits;
    const size = this.entries.length - this.start;
    if (overflow === "lag" && size + events.length > hardCap && size > 0) {
      throw new OmniRelayError({
        status: "resource-exhausted",
        code: ErrorCodes.replicationHub.outboxFull,
        message: `The replication outbox holds ${size} unacknowledged events (hard cap ${hardCap}); the hub is not keeping up.`,
        metadata: { "replication.pending": String(size) },
      });
    }
    this.reserved = previous;
    const acked = new Promise<void>((resolve, reject) => this.waiters.push({ last: previous, resolve, reject }));
    if (overflow === "block" && (this.admissions.length > 0 || (size > 0 && size + events.length > max))) {
      this.admissions.push({ events });
      this.queuedEvents += events.length;
    } else {
      this.admit(events);
    }
    this.settle();
    return acked;
  }

  /** Unacknowledged events with `sequenceNumber > after`, in order, at most `limit`. */
  after(after: number, limit: number): ResourceLeaseReplicationEvent[] {
    let lo = this.start;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.entries[mid]!.sequenceNumber <= after) lo = mid + 1;
      else hi = mid;
    }
    return this.entries.slice(lo, lo + limit);
  }

  /** Records the hub's acknowledgement: drops acknowledged events, resolves their publishes, admits waiting ones. */
  ack(sequence: number): void {
    if (sequence > this.ackedSeq) this.ackedSeq = sequence;
    this.settle();
  }

  /** Rejects every waiting publish (close). */
  failAll(error: unknown): void {
    for (const waiter of this.waiters.splice(0)) waiter.reject(error);
    this.admissions.length = 0;
    this.queuedEvents = 0;
  }

  /** Resolves when every publish so far is acknowledged. */
  drained(): Promise<void> {
    const last = this.waiters.at(-1);
    if (!last) return Promise.resolve();
    return new Promise<void>((resolve, reject) =>
      this.waiters.push({ last: last.last, resolve, reject: (e) => reject(e) }),
    );
  }

  private admit(events: readonly ResourceLeaseReplicationEvent[]): void {
    for (const event of events) if (event.sequenceNumber > this.ackedSeq) this.entries.push(event);
    this.onAdmit();
  }

  private settle(): void {
    while (this.start < this.entries.length && this.entries[this.start]!.sequenceNumber <= this.ackedSeq) this.start++;
    if (this.start > 1024 && this.start * 2 > this.entries.length) {
      this.entries = this.entries.slice(this.start);
      this.start = 0;
    }
    let done = 0;
    while (done < this.waiters.length && this.waiters[done]!.last <= this.ackedSeq) done++;
    for (const waiter of this.waiters.splice(0, done)) waiter.resolve();
    const { max, overflow } = this.limits;
    while (this.admissions.length > 0) {
      const next = this.admissions[0]!;
      const size = this.entries.length - this.start;
      if (size > 0 && size + next.events.length > max) break;
      this.admissions.shift();
      this.queuedEvents -= next.events.length;
      this.admit(next.events);
    }
    const size = this.entries.length - this.start;
    if (overflow === "lag") {
      if (size > max) this.isLagging = true;
      else if (size <= max / 2) this.isLagging = false;
    }
  }
}
