import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { type Clock, OmniRelayError, type TimerHandle } from "@omnirelay/core";
import { openBucket, readMembers, type ShardMember } from "./buckets.js";
import { unavailableError } from "./errors.js";

/**
 * This node's key in the membership bucket: written at {@link join}, put again every third of the bucket's TTL, and
 * deleted at {@link leave}. The bucket's streams expire a key the TTL after its last put (the server's `max_age`,
 * one clock), so a node that stops renewing leaves the membership by itself. Internal.
 */
export class Membership {
  private timer: TimerHandle | undefined;
  private stopped = false;
  /** Renewals that failed in a row (NATS unreachable). */
  failures = 0;

  private constructor(
    private readonly nc: NatsConnection,
    private readonly kv: KV,
    private readonly self: ShardMember & { readonly bucket: string; readonly clock: Clock; readonly ttlMs: number },
  ) {}

  /** Opens (creating with `ttlMs` when absent) the bucket; an existing bucket keeps its own TTL. */
  static async open(
    nc: NatsConnection,
    self: ShardMember & { readonly bucket: string; readonly clock: Clock },
    options: { readonly ttlMs: number; readonly replicas: number },
  ): Promise<Membership> {
    const kv = await openBucket(nc, self.bucket, { replicas: options.replicas, ttlMs: options.ttlMs });
    let ttlMs: number;
    try {
      ttlMs = (await kv.status()).ttl;
    } catch (error) {
      throw unavailableError(error, `KV_${self.bucket}`, "read");
    }
    if (!(ttlMs > 0)) {
      throw OmniRelayError.invalidOption(
        "membersBucket",
        `Bucket ${self.bucket} exists without a TTL: a membership bucket needs one (its keys must expire).`,
      );
    }
    return new Membership(nc, kv, { ...self, ttlMs });
  }

  /** The membership TTL: the bucket's. */
  get ttlMs(): number {
    return this.self.ttlMs;
  }

  /** Puts this node's key and keeps putting it every third of the TTL until {@link leave}. */
  async join(): Promise<void> {
    await this.put();
    this.schedule();
  }

  /** The live members (this node included once its key is stored). */
  members(): Promise<ShardMember[]> {
    return readMembers(this.nc, this.self.bucket);
  }

  /** Stops renewing and deletes this node's key: the others see it gone at their next read. */
  async leave(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.self.clock.clearTimeout(this.timer);
    await this.kv.delete(this.self.nodeId).catch(() => undefined);
  }

  private async put(): Promise<void> {
    const { nodeId, url, clock } = this.self;
    try {
      await this.kv.put(nodeId, JSON.stringify({ url, renewedAt: clock.now() }));
      this.failures = 0;
    } catch (error) {
      this.failures++;
      throw unavailableError(error, `KV_${this.self.bucket}`, "write");
    }
  }

  private schedule(): void {
    if (this.stopped) return;
    const every = Math.max(10, Math.floor(this.self.ttlMs / 3));
    // After a failure, try again sooner: the key must be renewed before the TTL runs out.
    const delay = this.failures > 0 ? Math.max(10, Math.floor(every / 3)) : every;
    this.timer = this.self.clock.setTimeout(() => {
      this.timer = undefined;
      if (this.stopped) return;
      this.put().then(
        () => this.schedule(),
        () => this.schedule(),
      );
    }, delay);
  }
}
