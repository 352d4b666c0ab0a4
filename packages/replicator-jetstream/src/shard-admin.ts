import { connect, type NatsConnection } from "@nats-io/transport-node";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import { integerOption } from "@omnirelay/core/wire";
import {
  bucketOption,
  DEFAULT_MEMBERS_BUCKET,
  DEFAULT_OWNERS_BUCKET,
  DEFAULT_PINS_BUCKET,
  KEY,
  openBucket,
  readBucket,
  readMembers,
  readPins,
  type ShardMember,
} from "./buckets.js";
import { unavailableError } from "./errors.js";
import { placeShards } from "./rendezvous.js";
import { parseRecord } from "./shard-lease.js";

/** Options of {@link JetStreamShardAdmin.open}: where the buckets are (the same names the nodes use). */
export interface JetStreamShardAdminOptions {
  /** An open NATS connection (not closed by the admin). Give this or `servers`. */
  readonly connection?: NatsConnection;
  /** NATS server URLs for a connection the admin opens and closes itself. */
  readonly servers?: string | readonly string[];
  /** @defaultValue "OMNIRELAY_OWNERS" */
  readonly ownersBucket?: string;
  /** @defaultValue "OMNIRELAY_MEMBERS" */
  readonly membersBucket?: string;
  /** @defaultValue "OMNIRELAY_PINS" */
  readonly pinsBucket?: string;
  /** Replicas of the pins bucket when `move` creates it. @defaultValue 1 */
  readonly replicas?: number;
}

/** One shard as the buckets describe it. */
export interface ShardView {
  readonly shard: string;
  /** Node id of the owner; "" when released or never owned. */
  readonly owner: string;
  readonly url: string;
  /** Ownership epoch (0 when never owned). */
  readonly epoch: number;
  /** Whether the owner is a live member now (an owner that is not stops serving within the TTL). */
  readonly ownerLive: boolean;
  /** The node an operator pinned the shard to. */
  readonly pinnedTo?: string;
  /** Where placement puts the shard now (pin or rendezvous over the live members). */
  readonly placedOn?: string;
}

/** What {@link JetStreamShardAdmin.list} reads. */
export interface ShardsOverview {
  /** Every shard that has an ownership key or a pin, by name. */
  readonly shards: ShardView[];
  /** The live members, by node id. */
  readonly members: ShardMember[];
}

/**
 * Operators' view and override of shard placement, reading and writing the buckets directly (what
 * `omnirelay shards list` and `omnirelay shards move` use): lists owners, epochs, pins and members; pins a shard to
 * a node — the nodes' placements then move it there (the owner releases it, the pinned node takes it from the log).
 */
export class JetStreamShardAdmin implements AsyncDisposable {
  private constructor(
    private readonly nc: NatsConnection,
    private readonly buckets: { readonly owners: string; readonly members: string; readonly pins: string },
    private readonly settings: { readonly owned: boolean; readonly replicas: number },
  ) {}

  /**
   * Connects (unless given a connection). Buckets are not created: a missing one reads as empty.
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid`; unavailable
   *   `resourcelease.jetstream.unavailable`.
   */
  static async open(options: JetStreamShardAdminOptions): Promise<JetStreamShardAdmin> {
    if (options === null || typeof options !== "object") {
      throw OmniRelayError.invalidOption("options", "JetStreamShardAdmin.open needs an options object.");
    }
    const servers = options.servers === undefined ? [] : [options.servers].flat();
    if ((options.connection === undefined) === (servers.length === 0)) {
      throw OmniRelayError.invalidOption("connection", "Give exactly one of 'connection' and 'servers'.");
    }
    const buckets = {
      owners: bucketOption("ownersBucket", options.ownersBucket, DEFAULT_OWNERS_BUCKET),
      members: bucketOption("membersBucket", options.membersBucket, DEFAULT_MEMBERS_BUCKET),
      pins: bucketOption("pinsBucket", options.pinsBucket, DEFAULT_PINS_BUCKET),
    };
    const replicas = integerOption("replicas", options.replicas, { min: 1, max: 5, fallback: 1 });
    let nc = options.connection;
    try {
      nc ??= await connect({ servers: servers as string[] });
    } catch (error) {
      throw unavailableError(error, `KV_${buckets.owners}`, "connect to NATS for");
    }
    return new JetStreamShardAdmin(nc, buckets, { owned: options.connection === undefined, replicas });
  }

  /**
   * Every shard with an ownership key or a pin, with its owner, epoch, pin and current placement; and the members.
   * @throws OmniRelayError unavailable `resourcelease.jetstream.unavailable`.
   */
  async list(): Promise<ShardsOverview> {
    const [owners, members, pins] = await Promise.all([
      readBucket(this.nc, this.buckets.owners),
      readMembers(this.nc, this.buckets.members),
      readPins(this.nc, this.buckets.pins),
    ]);
    const records = new Map(owners.map((entry) => [entry.key, parseRecord(entry.value)]));
    const names = [...new Set([...records.keys(), ...pins.keys()])].sort();
    const live = new Set(members.map((m) => m.nodeId));
    const placed = placeShards({ shards: names, nodes: live, pins });
    const shards = names.map((shard): ShardView => {
      const record = records.get(shard);
      const owner = record && !record.released ? record.owner : "";
      const pinnedTo = pins.get(shard);
      const placedOn = placed.get(shard);
      return {
        shard,
        owner,
        url: owner === "" ? "" : (record?.url ?? ""),
        epoch: record?.epoch ?? 0,
        ownerLive: owner !== "" && live.has(owner),
        ...(pinnedTo === undefined ? {} : { pinnedTo }),
        ...(placedOn === undefined ? {} : { placedOn }),
      };
    });
    return { shards, members: members.sort((a, b) => a.nodeId.localeCompare(b.nodeId)) };
  }

  /**
   * Pins `shard` to `node`: the placements move it there at their next rebalance, drain-free. Creates the pins bucket
   * when absent.
   * @throws OmniRelayError failed-precondition `resourcelease.jetstream.not_member` when `node` is not a live member
   *   (unless `force`); invalid-argument for a malformed shard or node; unavailable `resourcelease.jetstream.unavailable`.
   */
  async move(shard: string, node: string, options: { readonly force?: boolean } = {}): Promise<void> {
    if (!/^[A-Za-z0-9_-]+$/.test(shard))
      throw OmniRelayError.invalidOption("shard", `Shard '${shard}' is not a shard name.`);
    if (!KEY.test(node)) throw OmniRelayError.invalidOption("node", `Node '${node}' is not a node id.`);
    if (!options.force) {
      const members = await readMembers(this.nc, this.buckets.members);
      if (!members.some((m) => m.nodeId === node)) {
        const names = members.map((m) => m.nodeId).sort();
        throw new OmniRelayError({
          status: "failed-precondition",
          code: ErrorCodes.jetstream.notMember,
          message: `Node ${node} is not a live member (members: ${names.join(", ") || "none"}); pin it anyway with force.`,
          metadata: { node, members: names.join(",") },
        });
      }
    }
    const kv = await openBucket(this.nc, this.buckets.pins, { replicas: this.settings.replicas });
    try {
      await kv.put(shard, JSON.stringify({ node, pinnedAt: new Date().toISOString() }));
    } catch (error) {
      throw unavailableError(error, `KV_${this.buckets.pins}`, "write");
    }
  }

  /**
   * Removes `shard`'s pin (placement goes back to rendezvous hashing). Whether there was one.
   * @throws OmniRelayError unavailable `resourcelease.jetstream.unavailable`.
   */
  async unpin(shard: string): Promise<boolean> {
    const pins = await readPins(this.nc, this.buckets.pins);
    if (!pins.has(shard)) return false;
    const kv = await openBucket(this.nc, this.buckets.pins, { replicas: this.settings.replicas });
    try {
      await kv.delete(shard);
    } catch (error) {
      throw unavailableError(error, `KV_${this.buckets.pins}`, "write");
    }
    return true;
  }

  /**
   * Polls until `node` owns `shard` (its ownership key names it and is not released), up to `timeoutMs`. The view of
   * the shard then, or `undefined` when time ran out.
   */
  async waitForOwner(shard: string, node: string, timeoutMs: number): Promise<ShardView | undefined> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const view = (await this.list()).shards.find((s) => s.shard === shard);
      if (view?.owner === node) return view;
      if (Date.now() >= deadline) return undefined;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Closes the connection the admin opened. */
  async close(): Promise<void> {
    if (this.settings.owned) await this.nc.close().catch(() => undefined);
  }

  /** Same as {@link close}. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
