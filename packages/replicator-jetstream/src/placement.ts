import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ErrorCodes, isOmniRelayError, OmniRelayError, type TimerHandle } from "@omnirelay/core";
import { integerOption } from "@omnirelay/core/wire";
import {
  bucketOption,
  DEFAULT_MEMBERS_BUCKET,
  DEFAULT_PINS_BUCKET,
  KEY,
  openBucket,
  readPins,
  type ShardMember,
} from "./buckets.js";
import { unavailableError } from "./errors.js";
import { Membership } from "./membership.js";
import type { JetStreamShardOwnership } from "./ownership.js";
import { placeShards } from "./rendezvous.js";
import type { JetStreamShardLease } from "./shard-lease.js";

/** What {@link JetStreamShardPlacementOptions.serve} returns for a shard: closed when the shard leaves this node. */
export interface ServedShard {
  close(): Promise<void>;
}

/** A change of what this node holds, told to {@link JetStreamShardPlacementOptions.onEvent}. */
export type ShardPlacementEvent =
  | { readonly type: "acquired"; readonly shard: string; readonly epoch: number }
  | { readonly type: "released"; readonly shard: string; readonly epoch: number; readonly reason: "moved" | "closed" }
  | { readonly type: "lost"; readonly shard: string; readonly epoch: number; readonly error: OmniRelayError }
  | { readonly type: "error"; readonly shard?: string; readonly error: OmniRelayError };

/** Options of {@link JetStreamShardPlacement.open}. */
export interface JetStreamShardPlacementOptions<T extends ServedShard = ServedShard> {
  /** This node's ownership instance: its node id and URL are this member's; shards are acquired through it. */
  readonly ownership: JetStreamShardOwnership;
  /** Every shard of the deployment; all nodes are started with the same list. */
  readonly shards: readonly string[];
  /** An open NATS connection (not closed by the placement). Give this or `servers`. */
  readonly connection?: NatsConnection;
  /** NATS server URLs for a connection the placement opens and closes itself. */
  readonly servers?: string | readonly string[];
  /** KV bucket of the membership keys. @defaultValue "OMNIRELAY_MEMBERS" */
  readonly membersBucket?: string;
  /** KV bucket of the operators' pins (`omnirelay shards move`). @defaultValue "OMNIRELAY_PINS" */
  readonly pinsBucket?: string;
  /**
   * TTL of a membership key, used when this node creates the bucket (an existing bucket keeps its own TTL): a node
   * that stops renewing leaves the membership this long after its last renewal.
   * @defaultValue the ownership's `ownershipTtlMs`
   */
  readonly memberTtlMs?: number;
  /** How often the placement reads members, pins and owners and acts on them. @defaultValue a quarter of the smaller TTL */
  readonly rebalanceEveryMs?: number;
  /** Replicas of buckets this placement creates. @defaultValue 1 */
  readonly replicas?: number;
  /**
   * Starts serving a shard once this node holds it (for example `openOwnedJetStreamResourceLeaseQueue` with the same
   * ownership: it finds the lease already held). Closed when the shard moves away or is lost.
   */
  readonly serve?: (shard: string, lease: JetStreamShardLease) => Promise<T>;
  /** Hears every acquisition, release, loss and error. */
  readonly onEvent?: (event: ShardPlacementEvent) => void;
}

/** A shard this node holds (or is taking). */
export interface PlacedShard<T extends ServedShard = ServedShard> {
  readonly shard: string;
  readonly lease: JetStreamShardLease;
  /** What `serve` returned. */
  readonly served: T | undefined;
}

interface Slot<T> {
  phase: "acquiring" | "held" | "releasing";
  readonly abort: AbortController;
  lease?: JetStreamShardLease;
  served?: T;
  task?: Promise<void>;
}

/** Why a held shard is let go; "quiet" for one that was never announced as acquired. */
type DropReason = "moved" | "closed" | "lost" | "quiet";

const SHARD = /^[A-Za-z0-9_-]+$/;

/**
 * Spreads a list of shards over the live dispatcher nodes. Each node keeps a key in a membership bucket (renewed
 * within the bucket's TTL; it expires when the node stops), and places every shard on the member with the highest
 * rendezvous weight — or on the node an operator pinned it to, while that node is a member. Every
 * `rebalanceEveryMs` it acquires (through its {@link JetStreamShardOwnership}) the shards placed on it and releases
 * the ones that are not: a release marks the ownership key released, so the new owner takes over at once from the
 * log (drain-free). A node joining or leaving moves only its share. A member that stops renewing loses its shards to
 * the others about one TTL later: the placement has watched the ownership keys, so the takeover waits out the TTL
 * from when the owner's last renewal was seen, not from when the member left.
 */
export class JetStreamShardPlacement<T extends ServedShard = ServedShard> implements AsyncDisposable {
  private readonly slots = new Map<string, Slot<T>>();
  private readonly seen = new Map<string, { revision: number; at: number }>();
  private lastMembers: ShardMember[] = [];
  private lastPlacement = new Map<string, string>();
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private closed = false;

  private constructor(
    private readonly options: JetStreamShardPlacementOptions<T> & { readonly pinsBucket: string },
    private readonly membership: Membership,
    private readonly connection: { readonly nc: NatsConnection; readonly owned: boolean; readonly everyMs: number },
  ) {}

  /**
   * Joins the membership and runs the first rebalance (acquisitions go on in the background).
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid`; unavailable
   *   `resourcelease.jetstream.unavailable`.
   */
  static async open<T extends ServedShard = ServedShard>(
    options: JetStreamShardPlacementOptions<T>,
  ): Promise<JetStreamShardPlacement<T>> {
    if (options === null || typeof options !== "object" || options.ownership === undefined) {
      throw OmniRelayError.invalidOption("ownership", "JetStreamShardPlacement.open needs an ownership instance.");
    }
    const { ownership } = options;
    if (!KEY.test(ownership.nodeId)) {
      throw OmniRelayError.invalidOption("nodeId", `A placed node's id must match ${KEY.source}.`);
    }
    if (!Array.isArray(options.shards) || options.shards.some((s) => typeof s !== "string" || !SHARD.test(s))) {
      throw OmniRelayError.invalidOption("shards", `Option 'shards' must be a list of names matching ${SHARD.source}.`);
    }
    const servers = options.servers === undefined ? [] : [options.servers].flat();
    if ((options.connection === undefined) === (servers.length === 0)) {
      throw OmniRelayError.invalidOption("connection", "Give exactly one of 'connection' and 'servers'.");
    }
    const membersBucket = bucketOption("membersBucket", options.membersBucket, DEFAULT_MEMBERS_BUCKET);
    const pinsBucket = bucketOption("pinsBucket", options.pinsBucket, DEFAULT_PINS_BUCKET);
    const ttl = ownership.ownershipTtlMs;
    const memberTtlMs = integerOption("memberTtlMs", options.memberTtlMs, { min: 100, fallback: ttl });
    const replicas = integerOption("replicas", options.replicas, { min: 1, max: 5, fallback: 1 });
    let nc = options.connection;
    try {
      nc ??= await connect({ servers: servers as string[] });
    } catch (error) {
      throw unavailableError(error, `KV_${membersBucket}`, "connect to NATS for");
    }
    const owned = options.connection === undefined;
    try {
      const self = { nodeId: ownership.nodeId, url: ownership.url, bucket: membersBucket, clock: ownership.clock };
      const membership = await Membership.open(nc, self, { ttlMs: memberTtlMs, replicas });
      await openBucket(nc, pinsBucket, { replicas });
      const everyMs = integerOption("rebalanceEveryMs", options.rebalanceEveryMs, {
        min: 10,
        fallback: Math.max(10, Math.floor(Math.min(membership.ttlMs, ttl) / 4)),
      });
      const placement = new JetStreamShardPlacement<T>({ ...options, pinsBucket }, membership, { nc, owned, everyMs });
      await membership.join();
      await placement.rebalance();
      return placement;
    } catch (error) {
      if (owned) await nc.close().catch(() => undefined);
      throw error;
    }
  }

  /** This node's id. */
  get nodeId(): string {
    return this.options.ownership.nodeId;
  }

  /** The membership TTL in ms (the bucket's). */
  get memberTtlMs(): number {
    return this.membership.ttlMs;
  }

  /** The live members as last read (this node included). */
  members(): ShardMember[] {
    return [...this.lastMembers];
  }

  /** Where each shard belongs as last computed: shard → node id. */
  placement(): Map<string, string> {
    return new Map(this.lastPlacement);
  }

  /** The shards this node holds and serves now. */
  owned(): Map<string, PlacedShard<T>> {
    const out = new Map<string, PlacedShard<T>>();
    for (const [shard, slot] of this.slots) {
      if (slot.phase === "held" && slot.lease && !slot.lease.lost) {
        out.set(shard, { shard, lease: slot.lease, served: slot.served });
      }
    }
    return out;
  }

  /**
   * Reads members, pins and ownership keys once and acts: starts acquiring the shards placed here, stops acquiring
   * or releases the others, drops lost ones. Runs by itself every `rebalanceEveryMs`; one run at a time.
   */
  rebalance(): Promise<void> {
    if (this.closed) return Promise.resolve();
    this.running ??= this.run().finally(() => {
      this.running = undefined;
      this.schedule();
    });
    return this.running;
  }

  private schedule(): void {
    if (this.closed) return;
    const { clock } = this.options.ownership;
    if (this.timer) clock.clearTimeout(this.timer);
    this.timer = clock.setTimeout(() => {
      this.timer = undefined;
      void this.rebalance();
    }, this.connection.everyMs);
  }

  private async run(): Promise<void> {
    const { ownership, shards } = this.options;
    let pins: Map<string, string>;
    try {
      const [members, read] = await Promise.all([
        this.membership.members(),
        readPins(this.connection.nc, this.options.pinsBucket),
      ]);
      pins = read;
      const self = { nodeId: ownership.nodeId, url: ownership.url };
      this.lastMembers = members.some((m) => m.nodeId === self.nodeId) ? members : [...members, self];
      await this.observeOwners();
    } catch (error) {
      // Unreachable: change nothing. Held shards stay until their leases run out on their own.
      this.emit({ type: "error", error: OmniRelayError.from(error) });
      return;
    }
    if (this.closed) return;
    const nodes = this.lastMembers.map((m) => m.nodeId);
    this.lastPlacement = placeShards({ shards, nodes, pins });
    for (const shard of shards) {
      const mine = this.lastPlacement.get(shard) === ownership.nodeId;
      const slot = this.slots.get(shard);
      if (slot?.phase === "held" && slot.lease?.lost) slot.task = this.drop(shard, slot, "lost");
      else if (mine && slot === undefined) this.start(shard);
      else if (!mine && slot?.phase === "acquiring") slot.abort.abort();
      else if (!mine && slot?.phase === "held") slot.task = this.drop(shard, slot, "moved");
    }
  }

  /** Notes when each shard's ownership key changed revision, by this node's clock (see `seenSince`). */
  private async observeOwners(): Promise<void> {
    const { ownership, shards } = this.options;
    const records = await Promise.all(shards.map((shard) => ownership.owner(shard)));
    const now = ownership.clock.now();
    shards.forEach((shard, i) => {
      const record = records[i];
      if (record === undefined) this.seen.delete(shard);
      else if (this.seen.get(shard)?.revision !== record.revision) {
        this.seen.set(shard, { revision: record.revision, at: now });
      }
    });
  }

  private start(shard: string): void {
    const slot: Slot<T> = { phase: "acquiring", abort: new AbortController() };
    this.slots.set(shard, slot);
    const task: Promise<void> = this.take(shard, slot).finally(() => {
      if (slot.task === task) slot.task = undefined;
    });
    slot.task = task;
  }

  private async take(shard: string, slot: Slot<T>): Promise<void> {
    const { ownership, serve } = this.options;
    const seen = this.seen.get(shard);
    let lease: JetStreamShardLease;
    try {
      lease = await ownership.acquire(shard, { signal: slot.abort.signal, ...(seen ? { seenSince: seen } : {}) });
    } catch (error) {
      this.slots.delete(shard);
      const quiet =
        isOmniRelayError(error) &&
        [ErrorCodes.resourceLease.notOwner, ErrorCodes.resourceLease.cancelled].includes(error.code as never);
      if (!quiet && !this.closed) this.emit({ type: "error", shard, error: OmniRelayError.from(error) });
      return;
    }
    slot.lease = lease;
    try {
      if (!slot.abort.signal.aborted && !this.closed && serve) slot.served = await serve(shard, lease);
    } catch (error) {
      this.slots.delete(shard);
      await lease.release().catch(() => undefined);
      this.emit({ type: "error", shard, error: OmniRelayError.from(error) });
      return;
    }
    slot.phase = "held";
    if (slot.abort.signal.aborted || this.closed) {
      await this.drop(shard, slot, "quiet"); // taken while no longer wanted: never announced
      return;
    }
    this.emit({ type: "acquired", shard, epoch: lease.epoch });
    lease.onLost(() => void this.rebalance());
  }

  private async drop(shard: string, slot: Slot<T>, reason: DropReason): Promise<void> {
    slot.phase = "releasing";
    const lease = slot.lease as JetStreamShardLease;
    try {
      await slot.served?.close();
    } catch (error) {
      this.emit({ type: "error", shard, error: OmniRelayError.from(error) });
    }
    await lease.release().catch(() => undefined);
    this.slots.delete(shard);
    if (reason === "quiet") return;
    if (reason === "lost") {
      this.emit({ type: "lost", shard, epoch: lease.epoch, error: lease.lost as OmniRelayError });
    } else this.emit({ type: "released", shard, epoch: lease.epoch, reason });
  }

  private emit(event: ShardPlacementEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {
      // A listener's failure must not stop the placement.
    }
  }

  /**
   * Leaves the membership (the others place this node's shards elsewhere at their next rebalance), stops acquiring,
   * closes what `serve` returned and releases every shard so the new owners take over at once; then closes the
   * connection it opened. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const { clock } = this.options.ownership;
    if (this.timer) clock.clearTimeout(this.timer);
    await this.membership.leave();
    await this.running?.catch(() => undefined);
    for (const slot of this.slots.values()) slot.abort.abort();
    await Promise.all([...this.slots.values()].map((slot) => slot.task));
    await Promise.all(
      [...this.slots].filter(([, s]) => s.phase === "held").map(([shard, s]) => this.drop(shard, s, "closed")),
    );
    if (this.connection.owned) await this.connection.nc.close().catch(() => undefined);
  }

  /** Same as {@link close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
