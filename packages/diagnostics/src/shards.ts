import type { Clock, Logger, ResourceLeaseQueue } from "@omnirelay/core";
import { OmniRelayError } from "@omnirelay/core";
import type {
  ResourceLeaseBackpressureDiagnosticsListener,
  ResourceLeaseBackpressureSignal,
} from "@omnirelay/core/backpressure";
import { textOption } from "@omnirelay/core/wire";
import { duplicate } from "./errors.js";

/** A shard registration for `ResourceLeaseControlPlane.addShard`. */
export interface ControlPlaneShardOptions {
  /** Queue namespace; the `shard` label value. */
  readonly namespace: string;
  /** The shard's queue (`component.queue`). */
  readonly queue: ResourceLeaseQueue;
  /**
   * A diagnostics listener fed by the queue's gate. Only needed when the queue has no `backpressure` controller
   * of its own (otherwise the control plane listens to the controller directly). @defaultValue `undefined`
   */
  readonly backpressure?: ResourceLeaseBackpressureDiagnosticsListener;
}

/** A registered shard (internal). */
export interface ShardEntry {
  readonly namespace: string;
  readonly queue: ResourceLeaseQueue;
  readonly listener: ResourceLeaseBackpressureDiagnosticsListener | undefined;
  readonly registeredAt: number;
  latest: ResourceLeaseBackpressureSignal | undefined;
  readonly detach: () => void;
}

/** What a {@link ShardRegistry} needs from the control plane. */
export interface ShardRegistryContext {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Aborted when the control plane closes: ends the backpressure relays. */
  readonly closed: AbortSignal;
  /** Receives every backpressure transition of a shard. */
  readonly onSignal: (shard: string, signal: ResourceLeaseBackpressureSignal) => void;
}

/** The shards of a control plane: their queues and backpressure gates (internal). */
export class ShardRegistry {
  private readonly shards = new Map<string, ShardEntry>();

  constructor(private readonly context: ShardRegistryContext) {}

  /** Registers a shard; see `ResourceLeaseControlPlane.addShard`. */
  add(options: ControlPlaneShardOptions): () => void {
    const namespace = textOption("namespace", options?.namespace);
    if (typeof options.queue?.stats !== "function")
      throw OmniRelayError.invalidOption("queue", "Option 'queue' must be a queue.");
    if (this.shards.has(namespace)) throw duplicate("shard", namespace);
    const onSignal = (signal: ResourceLeaseBackpressureSignal): void => {
      const entry = this.shards.get(namespace);
      if (entry) entry.latest = signal;
      this.context.onSignal(namespace, signal);
    };
    const entry: ShardEntry = {
      namespace,
      queue: options.queue,
      listener: options.backpressure,
      registeredAt: this.context.clock.now(),
      latest: undefined,
      detach: this.attach(namespace, options, onSignal),
    };
    this.shards.set(namespace, entry);
    return () => {
      if (this.shards.get(namespace) !== entry) return;
      this.shards.delete(namespace);
      entry.detach();
    };
  }

  /** The registered shards. */
  entries(): ShardEntry[] {
    return [...this.shards.values()];
  }

  /** The shard registered under `namespace`. */
  get(namespace: string): ShardEntry | undefined {
    return this.shards.get(namespace);
  }

  /** The latest backpressure signal of a shard, from whichever source has one. */
  static latest(entry: ShardEntry): ResourceLeaseBackpressureSignal | undefined {
    return entry.latest ?? entry.listener?.latest ?? entry.queue.backpressure?.latest;
  }

  /** Detaches from every queue. */
  detachAll(): void {
    for (const shard of this.shards.values()) shard.detach();
  }

  private attach(
    namespace: string,
    options: ControlPlaneShardOptions,
    onSignal: (signal: ResourceLeaseBackpressureSignal) => void,
  ): () => void {
    const controller = options.queue.backpressure;
    if (controller !== undefined) return controller.addListener({ onBackpressureChanged: onSignal });
    if (options.backpressure === undefined) return () => {};
    const stop = new AbortController();
    const updates = options.backpressure.updates({ signal: AbortSignal.any([stop.signal, this.context.closed]) });
    void (async () => {
      for await (const signal of updates) onSignal(signal);
    })().catch((err: unknown) => this.context.logger.warn({ err, shard: namespace }, "Backpressure relay stopped."));
    return () => stop.abort();
  }
}
