import type { KV } from "@nats-io/kv";
import type { Clock, OmniRelayError, TimerHandle } from "@omnirelay/core";
import { notOwnerError, type OwnerInfo } from "./errors.js";
import { plainText } from "./frames.js";

/** The value of a shard's ownership key. Internal. */
export interface OwnerRecord extends OwnerInfo {
  /** When the owner last renewed, ms since the epoch by its clock (informational: nobody compares clocks). */
  readonly renewedAt: number;
  /** Set when the owner let go: the next node takes the shard at once. */
  readonly released?: boolean;
}

/** What a lease needs from its ownership instance. Internal. */
export interface LeaseContext {
  readonly kv: KV;
  readonly clock: Clock;
  readonly ttlMs: number;
  readonly renewEveryMs: number;
  readonly timeoutMs: number;
}

/** The JetStream API error code of "wrong last sequence": a compare-and-set lost. Internal. */
export const WRONG_LAST_SEQUENCE = 10071;

/** Whether an error is a lost compare-and-set. Internal. */
export function casRefused(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === WRONG_LAST_SEQUENCE;
}

/** Longest node id and URL an ownership key may name: the limits of the `nodeId` and `url` options. Internal. */
export const MAX_OWNER_CHARS = 200;
export const MAX_URL_CHARS = 2000;

/**
 * Parses an ownership key's value; one that does not parse counts as a live owner nobody can name. So does one whose
 * epoch is negative or so large that the next one (epoch + 1) is not a safe integer: a taker would write that epoch
 * into its owner-epoch marker, which no reader accepts, and the shard's log would refuse every open after it. A node
 * id or URL longer than the options allow or with control characters is not passed on into `not_owner` errors
 * (clients read them; a MiB-long or CR/LF-laden value is not one a node wrote). Internal.
 */
export function parseRecord(value: Uint8Array): OwnerRecord {
  try {
    const r = JSON.parse(new TextDecoder().decode(value)) as OwnerRecord;
    const epochOk = Number.isSafeInteger(r.epoch) && r.epoch >= 0 && r.epoch < Number.MAX_SAFE_INTEGER;
    if (plainText(r.owner, MAX_OWNER_CHARS) && plainText(r.url, MAX_URL_CHARS) && epochOk) return r;
  } catch {
    // fall through
  }
  return { owner: "(unreadable)", url: "", epoch: 0, renewedAt: 0 };
}

/**
 * This node's ownership of one shard, from `JetStreamShardOwnership.acquire`. It renews itself every `renewEveryMs`
 * (a compare-and-set on the key's revision) and is valid until `ownershipTtlMs` after the last renewal that
 * succeeded was *sent* — earlier than any other node can take the shard, since a taker waits `ownershipTtlMs` after
 * it *saw* that revision. It is lost, for good, when a renewal is refused (another node took the shard), when no
 * renewal succeeded in time, or when the owner's log refused an append ({@link surrender}); listeners then hear a
 * `resourcelease.not_owner` error at once, and again when the new owner becomes known.
 */
export class JetStreamShardLease {
  /** The shard. */
  readonly shard: string;
  /** This ownership's epoch: one more than the previous owner's. */
  readonly epoch: number;
  private revisionValue: number;
  private validUntil: number;
  private lostError: OmniRelayError | undefined;
  private released = false;
  private renewTimer: TimerHandle | undefined;
  private expiryTimer: TimerHandle | undefined;
  private readonly listeners: Array<(error: OmniRelayError) => void> = [];
  private renewals = 0;
  private failedRenewals = 0;

  /** Internal: made by `JetStreamShardOwnership.acquire`. */
  constructor(
    private readonly context: LeaseContext,
    private readonly record: OwnerRecord & { readonly shard: string },
    acquired: { readonly revision: number; readonly sentAt: number },
  ) {
    this.shard = record.shard;
    this.epoch = record.epoch;
    this.revisionValue = acquired.revision;
    this.validUntil = acquired.sentAt + context.ttlMs;
    this.armExpiry();
    this.scheduleRenewal(context.renewEveryMs);
  }

  /** The ownership key's revision after this node's last write. */
  get revision(): number {
    return this.revisionValue;
  }

  /** The `resourcelease.not_owner` error once the lease is lost, else `undefined`. */
  get lost(): OmniRelayError | undefined {
    return this.lostError;
  }

  /** Renewals that succeeded and that failed (without losing the lease) since it was acquired. */
  stats(): { readonly renewals: number; readonly failedRenewals: number; readonly validUntil: number } {
    return { renewals: this.renewals, failedRenewals: this.failedRenewals, validUntil: this.validUntil };
  }

  /** Calls `listener` when the lease is lost, and again with a better error when the new owner becomes known. */
  onLost(listener: (error: OmniRelayError) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Gives the shard up because this node's log refused an append (another node appended: it owns the shard now) or
   * for any other `cause`: the lease is lost at once and stops renewing. Resolves with the `not_owner` error naming
   * the current owner as the ownership key says (one read).
   */
  async surrender(cause?: unknown): Promise<OmniRelayError> {
    this.lose(cause);
    await this.refresh();
    return this.lostError as OmniRelayError;
  }

  /**
   * Lets the shard go: the key is marked released (by compare-and-set, so only while this node still holds it) and
   * the next node takes it at once instead of waiting out the TTL. Stops renewing either way. Idempotent.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    this.stopTimers();
    if (this.lostError) return;
    this.lostError = notOwnerError(this.shard, undefined);
    const value = { owner: "", url: "", epoch: this.epoch, renewedAt: this.context.clock.now(), released: true };
    await this.context.kv
      .update(this.shard, JSON.stringify(value), this.revisionValue, this.context.timeoutMs)
      .catch(() => undefined);
  }

  private lose(cause: unknown): void {
    if (this.lostError) return;
    this.stopTimers();
    this.lostError = notOwnerError(this.shard, undefined, cause);
    this.emit(this.lostError);
    void this.followOwner();
  }

  /** After a loss: reads the key until another owner shows up, telling the listeners who it is. */
  private async followOwner(): Promise<void> {
    while (!this.released && !(await this.refresh())) {
      await new Promise((resolve) =>
        this.context.clock.setTimeout(() => resolve(undefined), this.context.renewEveryMs),
      );
    }
  }

  /** Reads the key; when another node holds it, updates the error and tells the listeners. Whether it found one. */
  private async refresh(): Promise<boolean> {
    const lost = this.lostError;
    if (lost === undefined) return false;
    try {
      const entry = await this.context.kv.get(this.shard);
      const record = entry?.operation === "PUT" ? parseRecord(entry.value) : undefined;
      if (record === undefined || record.released || record.epoch === this.epoch) return false;
      if (lost.metadata.owner === record.owner && lost.metadata.epoch === String(record.epoch)) return true;
      this.lostError = notOwnerError(this.shard, record, lost.cause);
      this.emit(this.lostError);
      return true;
    } catch {
      return false;
    }
  }

  private emit(error: OmniRelayError): void {
    for (const listener of this.listeners) {
      try {
        listener(error);
      } catch {
        // A listener's failure must not keep the others from hearing.
      }
    }
  }

  private scheduleRenewal(delayMs: number): void {
    if (this.lostError || this.released) return;
    this.renewTimer = this.context.clock.setTimeout(() => void this.renew(), delayMs);
  }

  private async renew(): Promise<void> {
    this.renewTimer = undefined;
    if (this.lostError || this.released) return;
    const { clock, kv, timeoutMs, ttlMs, renewEveryMs } = this.context;
    const sentAt = clock.now();
    const value = JSON.stringify({ ...this.ownerValue(), renewedAt: sentAt });
    try {
      const revision = await kv.update(this.shard, value, this.revisionValue, timeoutMs);
      if (this.lostError || this.released) return;
      this.revisionValue = revision;
      this.validUntil = sentAt + ttlMs;
      this.renewals++;
      this.armExpiry();
      this.scheduleRenewal(renewEveryMs);
    } catch (error) {
      if (casRefused(error)) return this.lose(error);
      // Unreachable or slow: try again soon; the expiry timer ends the lease if nothing succeeds in time.
      this.failedRenewals++;
      this.scheduleRenewal(Math.max(1, Math.min(renewEveryMs, this.validUntil - clock.now()) / 2));
    }
  }

  private ownerValue(): OwnerRecord {
    const { owner, url, epoch } = this.record;
    return { owner, url, epoch, renewedAt: 0 };
  }

  private armExpiry(): void {
    const { clock } = this.context;
    if (this.expiryTimer) clock.clearTimeout(this.expiryTimer);
    this.expiryTimer = clock.setTimeout(
      () => {
        this.expiryTimer = undefined;
        if (clock.now() >= this.validUntil) this.lose(new Error("No renewal succeeded within ownershipTtlMs."));
        else this.armExpiry();
      },
      Math.max(0, this.validUntil - clock.now()),
    );
  }

  private stopTimers(): void {
    const { clock } = this.context;
    if (this.renewTimer) clock.clearTimeout(this.renewTimer);
    if (this.expiryTimer) clock.clearTimeout(this.expiryTimer);
    this.renewTimer = undefined;
    this.expiryTimer = undefined;
  }
}
