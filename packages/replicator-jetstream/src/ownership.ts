import { StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import { connect, type NatsConnection } from "@nats-io/transport-node";
import { type Clock, ErrorCodes, OmniRelayError, systemClock } from "@omnirelay/core";
import { integerOption, textOption } from "@omnirelay/core/wire";
import { notOwnerError, unavailableError } from "./errors.js";
import { plainText } from "./frames.js";
import {
  casRefused,
  JetStreamShardLease,
  type LeaseContext,
  MAX_OWNER_CHARS,
  MAX_URL_CHARS,
  type OwnerRecord,
  parseRecord,
} from "./shard-lease.js";

/** Options of {@link JetStreamShardOwnership.open}. */
export interface JetStreamShardOwnershipOptions {
  /** An open NATS connection (neither drained nor closed by this instance). Give this or `servers`. */
  readonly connection?: NatsConnection;
  /** NATS server URLs for a connection this instance opens and closes itself. */
  readonly servers?: string | readonly string[];
  /** This node's id, written as the owner of the shards it holds. Unique per running node. */
  readonly nodeId: string;
  /** The URL clients reach this node at; `resourcelease.not_owner` answers name it. */
  readonly url: string;
  /** KV bucket of the ownership keys (one per shard; created when absent). @defaultValue "OMNIRELAY_OWNERS" */
  readonly bucket?: string;
  /**
   * How long an ownership lasts without a renewal. An owner stops serving when this much time passed since it sent
   * its last successful renewal; another node takes the shard once it saw the key unchanged for this long.
   * @defaultValue 10000
   */
  readonly ownershipTtlMs?: number;
  /** How often an owner renews; less than `ownershipTtlMs`. @defaultValue a third of `ownershipTtlMs` */
  readonly renewEveryMs?: number;
  /** Replicas of a bucket this instance creates (3 in production). @defaultValue 1 */
  readonly replicas?: number;
  /** How long one KV operation may take. @defaultValue half of `ownershipTtlMs`, at most 5000 */
  readonly timeoutMs?: number;
  /** Time source and timers (tests pass a `FakeClock`). Only durations of one node's clock are compared. */
  readonly clock?: Clock;
}

/** Options of {@link JetStreamShardOwnership.acquire}. */
export interface AcquireShardOptions {
  /** How long to wait for the current owner's ownership to run out. @defaultValue twice `ownershipTtlMs` */
  readonly waitMs?: number;
  /** Aborts the wait. */
  readonly signal?: AbortSignal;
  /**
   * The key's revision this node already saw, and when (by {@link JetStreamShardOwnership.clock}): the TTL is counted
   * from then instead of from `acquire`'s first read, when the key still holds that revision. Placement passes it
   * for shards it has been watching, so a takeover does not wait a second TTL.
   */
  readonly seenSince?: { readonly revision: number; readonly at: number };
}

/** A shard's ownership key as read. */
export interface ShardOwnerRecord {
  readonly shard: string;
  /** Node id of the owner ("" when released). */
  readonly owner: string;
  readonly url: string;
  readonly epoch: number;
  /** Revision of the key (its compare-and-set version). */
  readonly revision: number;
  readonly released: boolean;
}

const TOKEN = /^[A-Za-z0-9_-]+$/;

/**
 * Fenced shard ownership in a JetStream KV bucket: one key per shard holding `{ owner, url, epoch }`. A node
 * acquires a shard by compare-and-set (create, or update at the revision it read once the owner's TTL ran out by its
 * own clock, or at once when the owner released it), keeps it by renewing within `ownershipTtlMs`, and loses it when a
 * renewal is refused or none succeeds in time. The epoch grows by one with every change of owner. Ownership is the
 * soft half of the fence: the shard's log refuses a stale owner's appends by itself (see the README).
 */
export class JetStreamShardOwnership implements AsyncDisposable {
  readonly nodeId: string;
  readonly url: string;
  private readonly held = new Map<string, JetStreamShardLease>();
  private closed = false;

  private constructor(
    private readonly context: LeaseContext & { readonly bucket: string },
    private readonly identity: { readonly nodeId: string; readonly url: string },
    private readonly connection: { readonly nc: NatsConnection; readonly owned: boolean },
  ) {
    this.nodeId = identity.nodeId;
    this.url = identity.url;
  }

  /**
   * Connects (unless given a connection) and opens the bucket, creating it when absent (history 1, file storage).
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid`; unavailable
   *   `resourcelease.jetstream.unavailable`.
   */
  static async open(options: JetStreamShardOwnershipOptions): Promise<JetStreamShardOwnership> {
    if (options === null || typeof options !== "object") {
      throw OmniRelayError.invalidOption("options", "JetStreamShardOwnership.open needs an options object.");
    }
    const servers = options.servers === undefined ? [] : [options.servers].flat();
    if ((options.connection === undefined) === (servers.length === 0)) {
      throw OmniRelayError.invalidOption("connection", "Give exactly one of 'connection' and 'servers'.");
    }
    const nodeId = textOption("nodeId", options.nodeId, { max: MAX_OWNER_CHARS });
    const url = textOption("url", options.url, { max: MAX_URL_CHARS });
    // Both go into NATS headers and ownership keys, which other nodes read back (see parseRecord).
    for (const [name, value] of [
      ["nodeId", nodeId],
      ["url", url],
    ] as const) {
      if (!plainText(value, Number.POSITIVE_INFINITY)) {
        throw OmniRelayError.invalidOption(name, `Option '${name}' must not hold control characters.`);
      }
    }
    const bucket = textOption("bucket", options.bucket, { max: 200, fallback: "OMNIRELAY_OWNERS" });
    if (!TOKEN.test(bucket))
      throw OmniRelayError.invalidOption("bucket", `Option 'bucket' must match ${TOKEN.source}.`);
    const ttlMs = integerOption("ownershipTtlMs", options.ownershipTtlMs, { min: 100, fallback: 10_000 });
    const renewEveryMs = integerOption("renewEveryMs", options.renewEveryMs, {
      min: 10,
      max: ttlMs - 1,
      fallback: Math.floor(ttlMs / 3),
    });
    const timeoutMs = integerOption("timeoutMs", options.timeoutMs, {
      min: 10,
      fallback: Math.min(5000, Math.floor(ttlMs / 2)),
    });
    const replicas = integerOption("replicas", options.replicas, { min: 1, max: 5, fallback: 1 });
    let nc = options.connection;
    try {
      nc ??= await connect({ servers: servers as string[] });
    } catch (error) {
      throw unavailableError(error, `KV_${bucket}`, "connect to NATS for");
    }
    let kv: KV;
    let maxAgeMs: number;
    try {
      kv = await new Kvm(nc).create(bucket, { history: 1, replicas, storage: StorageType.File, allow_direct: false });
      maxAgeMs = (await kv.status()).ttl;
    } catch (error) {
      if (options.connection === undefined) await nc.close().catch(() => undefined);
      throw unavailableError(error, `KV_${bucket}`, "open or create the ownership bucket");
    }
    if (maxAgeMs > 0) {
      // An existing bucket keeps its settings. Keys that expire take their epochs with them: another node takes a held
      // shard as soon as its key expires, whatever ownershipTtlMs says, and numbers its epoch from 1 again.
      if (options.connection === undefined) await nc.close().catch(() => undefined);
      throw OmniRelayError.invalidOption(
        "bucket",
        `Bucket ${bucket} expires its keys after ${maxAgeMs} ms; ownership keys must not expire (use a bucket without a max age).`,
      );
    }
    const clock = options.clock ?? systemClock;
    return new JetStreamShardOwnership(
      { kv, clock, ttlMs, renewEveryMs, timeoutMs, bucket },
      { nodeId, url },
      { nc, owned: options.connection === undefined },
    );
  }

  /** The clock this instance measures TTLs with (times given in `seenSince` must come from it). */
  get clock(): Clock {
    return this.context.clock;
  }

  /** The TTL of an ownership, in ms. */
  get ownershipTtlMs(): number {
    return this.context.ttlMs;
  }

  /**
   * The shard's ownership key as it stands, or `undefined` when nobody ever held it.
   * @throws OmniRelayError unavailable `resourcelease.jetstream.unavailable`.
   */
  async owner(shard: string): Promise<ShardOwnerRecord | undefined> {
    const entry = await this.read(shard);
    if (entry === undefined) return undefined;
    const { record, revision } = entry;
    return { shard, owner: record.owner, url: record.url, epoch: record.epoch, revision, released: !!record.released };
  }

  private async read(shard: string): Promise<{ record: OwnerRecord; revision: number; deleted: boolean } | undefined> {
    try {
      const entry = await this.context.kv.get(shard);
      if (entry === null) return undefined;
      if (entry.operation !== "PUT") {
        return { record: { owner: "", url: "", epoch: 0, renewedAt: 0 }, revision: entry.revision, deleted: true };
      }
      return { record: parseRecord(entry.value), revision: entry.revision, deleted: false };
    } catch (error) {
      throw unavailableError(error, `KV_${this.context.bucket}`, "read");
    }
  }

  /**
   * Takes the shard: at once when nobody holds it or its owner released it; otherwise once the key stayed at the same
   * revision for `ownershipTtlMs` (its owner stopped renewing), as this node's clock measures from when it first saw
   * that revision. The new ownership's epoch is the previous one's plus one.
   * @throws OmniRelayError failed-precondition `resourcelease.not_owner` naming the owner when another node still
   *   holds the shard after `waitMs`; cancelled `resourcelease.cancelled` when `signal` aborts; unavailable
   *   `resourcelease.jetstream.unavailable`.
   */
  async acquire(shard: string, options: AcquireShardOptions = {}): Promise<JetStreamShardLease> {
    if (!TOKEN.test(shard)) throw OmniRelayError.invalidOption("shard", `A shard must match ${TOKEN.source}.`);
    if (this.closed) throw notOwnerError(shard, undefined, new Error("The ownership instance is closed."));
    const mine = this.held.get(shard);
    if (mine !== undefined && mine.lost === undefined) return mine;
    const { clock, ttlMs, kv } = this.context;
    const waitMs = integerOption("waitMs", options.waitMs, { min: 0, fallback: 2 * ttlMs });
    const deadline = clock.now() + waitMs;
    const pollMs = Math.max(10, Math.floor(ttlMs / 5));
    let seen: { revision: number; since: number } | undefined =
      options.seenSince && options.seenSince.at <= clock.now()
        ? { revision: options.seenSince.revision, since: options.seenSince.at }
        : undefined;
    for (;;) {
      if (options.signal?.aborted) {
        throw new OmniRelayError({
          status: "cancelled",
          code: ErrorCodes.resourceLease.cancelled,
          message: `Acquiring shard ${shard} was cancelled.`,
          cause: options.signal.reason,
        });
      }
      const current = await this.read(shard);
      const now = clock.now();
      const free = current === undefined || current.deleted || current.record.released === true;
      if (!free && seen?.revision !== current.revision) seen = { revision: current.revision, since: now };
      if (free || (seen !== undefined && now - seen.since >= ttlMs)) {
        const epoch = (current?.record.epoch ?? 0) + 1;
        const value: OwnerRecord = { owner: this.identity.nodeId, url: this.identity.url, epoch, renewedAt: now };
        try {
          const text = JSON.stringify(value);
          const revision =
            current === undefined ? await kv.create(shard, text) : await kv.update(shard, text, current.revision);
          const lease = new JetStreamShardLease(this.context, { ...value, shard }, { revision, sentAt: now });
          this.held.set(shard, lease);
          return lease;
        } catch (error) {
          if (!casRefused(error)) throw unavailableError(error, `KV_${this.context.bucket}`, "write");
          seen = undefined; // another node wrote first: look again
          continue;
        }
      }
      const left = deadline - clock.now();
      if (left <= 0) throw notOwnerError(shard, current?.record);
      const untilExpiry = seen === undefined ? pollMs : seen.since + ttlMs - clock.now();
      await sleep(clock, Math.max(1, Math.min(pollMs, left, untilExpiry)), options.signal);
    }
  }

  /** Leases this instance holds (lost ones too, until released). */
  leases(): JetStreamShardLease[] {
    return [...this.held.values()];
  }

  /** Releases every shard this node holds (the next node takes each at once) and closes its own connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all([...this.held.values()].map((lease) => lease.release()));
    if (this.connection.owned) await this.connection.nc.close().catch(() => undefined);
  }

  /** Same as {@link close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

function sleep(clock: Clock, ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const timer = clock.setTimeout(done, ms);
    function done() {
      signal?.removeEventListener("abort", abort);
      resolve();
    }
    function abort() {
      clock.clearTimeout(timer);
      done();
    }
    signal?.addEventListener("abort", abort, { once: true });
  });
}
