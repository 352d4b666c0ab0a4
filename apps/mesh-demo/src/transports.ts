import type { RequestMeta, UnaryHandler, UnaryInboundMiddleware, UnaryRequest, UnaryResponse } from "@omnirelay/core";

/** What the dispatcher saw of one caller: the transport of its queue calls, and its calls per transport. */
export interface CallerTransport {
  readonly caller: string;
  /** Transport of its newest queue call (`http`, `grpc`, …); of its newest call if it made no queue call. */
  readonly transport: string;
  readonly calls: Readonly<Record<string, number>>;
  readonly lastCallAt: number;
}

/**
 * Remembers, per caller (`rpc-caller`: a worker's peer id, `mesh-seeder`), which transport its calls came in on, so
 * the live page can say which worker speaks gRPC and which HTTP. Bounded: the oldest caller is forgotten first.
 */
export class CallerTransports implements UnaryInboundMiddleware {
  private readonly callers = new Map<
    string,
    { transport: string; calls: Record<string, number>; lastCallAt: number }
  >();

  /**
   * @param isQueueCall which calls say what a caller's transport is (a worker also calls custom procedures, which
   *   only HTTP carries)
   */
  constructor(
    private readonly isQueueCall: (meta: RequestMeta) => boolean = () => true,
    private readonly capacity = 256,
  ) {}

  handle(request: UnaryRequest, next: UnaryHandler): Promise<UnaryResponse> {
    const { caller, transport } = request.meta;
    if (caller) {
      const entry = this.callers.get(caller) ?? { transport, calls: {}, lastCallAt: 0 };
      this.callers.delete(caller); // re-inserted last: the map stays in order of the latest call
      if (this.isQueueCall(request.meta)) entry.transport = transport;
      entry.calls[transport] = (entry.calls[transport] ?? 0) + 1;
      entry.lastCallAt = Date.now();
      this.callers.set(caller, entry);
      if (this.callers.size > this.capacity) this.callers.delete(this.callers.keys().next().value as string);
    }
    return next(request);
  }

  /** The transport of `caller`'s last call, if it made one. */
  of(caller: string): string | undefined {
    return this.callers.get(caller)?.transport;
  }

  /** Every caller seen, newest call first. */
  snapshot(): CallerTransport[] {
    return [...this.callers]
      .map(([caller, e]) => ({ caller, transport: e.transport, calls: { ...e.calls }, lastCallAt: e.lastCallAt }))
      .reverse();
  }
}
