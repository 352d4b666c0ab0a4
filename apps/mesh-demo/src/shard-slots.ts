import {
  Dispatcher,
  ErrorCodes,
  type Logger,
  OmniRelayError,
  ResourceLeaseDispatcherComponent,
  ResourceLeaseQueue,
  ResourceLeaseVerbs,
} from "@omnirelay/core";
import type { PeerLeaseHealthTracker } from "@omnirelay/core/peers";

/** The queue a node serves for a shard while it owns it. */
interface Serving {
  readonly inner: Dispatcher;
  readonly component: ResourceLeaseDispatcherComponent;
}

/** Who owns a shard now, for a `not_owner` answer (`""` when nobody does yet). */
export type OwnerLookup = (shard: string) => Promise<{ owner: string; url: string }>;

/**
 * The queue procedures of every shard (`{namespace}::enqueue`, …), registered once on a node's dispatcher and routed
 * to the queue of the shard while this node owns it. A dispatcher cannot unregister procedures, and a shard comes and
 * goes as ownership moves, so each ownership gets a `ResourceLeaseDispatcherComponent` on a dispatcher of its own and
 * the node's procedures call its handlers. A shard this node does not serve answers failed-precondition
 * `resourcelease.not_owner` naming the owner in the ownership key, which clients given several endpoints follow.
 */
export class ShardSlots {
  private readonly serving = new Map<string, Serving>();
  private readonly namespaces: Map<string, string>;

  constructor(
    private readonly dispatcher: Dispatcher,
    private readonly options: {
      readonly namespaces: ReadonlyMap<string, string>;
      readonly ownerOf: OwnerLookup;
      readonly tracker: PeerLeaseHealthTracker;
      readonly logger: Logger;
    },
  ) {
    this.namespaces = new Map(options.namespaces);
    for (const [shard, namespace] of this.namespaces) this.registerShard(shard, namespace);
  }

  private registerShard(shard: string, namespace: string): void {
    // The procedure definitions are the component's: take them from one built on a scratch dispatcher.
    const template = new Dispatcher({ service: "mesh-demo-template" });
    const scratch = new ResourceLeaseDispatcherComponent(template, { namespace, queue: new ResourceLeaseQueue() });
    void scratch.close();
    for (const verb of ResourceLeaseVerbs) {
      const name = `${namespace}::${verb}`;
      const spec = template.lookup(name);
      if (!spec) continue;
      this.dispatcher.register({
        name,
        definition: spec.definition,
        handler: async (request: unknown, meta) => {
          const current = this.serving.get(shard);
          if (!current) throw await this.notOwner(shard);
          const handler = current.inner.lookup(name)?.handler;
          if (!handler) throw await this.notOwner(shard);
          return handler(request, meta);
        },
      });
    }
  }

  private async notOwner(shard: string): Promise<OmniRelayError> {
    let owner = { owner: "", url: "" };
    try {
      owner = await this.options.ownerOf(shard);
    } catch {
      // NATS unreachable: answer without a name, the client tries the next endpoint.
    }
    return new OmniRelayError({
      status: "failed-precondition",
      code: ErrorCodes.resourceLease.notOwner,
      message: owner.owner ? `Node ${owner.owner} owns shard ${shard}.` : `Nobody serves shard ${shard} right now.`,
      metadata: { owner: owner.owner, ownerUrl: owner.url, shard },
    });
  }

  /** Serves `queue` as the shard's namespace until {@link unserve}. */
  serve(shard: string, queue: ResourceLeaseQueue): ResourceLeaseDispatcherComponent {
    const namespace = this.namespaces.get(shard) as string;
    const inner = new Dispatcher({ service: "mesh-demo-shard", logger: this.options.logger });
    const component = new ResourceLeaseDispatcherComponent(inner, {
      namespace,
      queue,
      healthTracker: this.options.tracker,
      logger: this.options.logger,
    });
    this.serving.set(shard, { inner, component });
    return component;
  }

  /** Stops routing the shard's calls to its queue (they are answered `not_owner` from now on). */
  unserve(shard: string): void {
    this.serving.delete(shard);
  }
}
