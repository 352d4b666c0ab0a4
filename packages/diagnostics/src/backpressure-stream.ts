import type { IncomingMessage, ServerResponse } from "node:http";
import type { Clock, Logger, TimerHandle } from "@omnirelay/core";
import type { ResourceLeaseBackpressureSignal } from "@omnirelay/core/backpressure";

/** One backpressure transition of a shard, as served by the control plane. */
export interface ShardBackpressureSignal extends ResourceLeaseBackpressureSignal {
  /** The shard (queue namespace). */
  readonly shard: string;
}

interface Client {
  readonly res: ServerResponse;
  timer: TimerHandle | undefined;
  readonly close: () => void;
}

/** Options of {@link BackpressureEventStream}. */
export interface BackpressureEventStreamOptions {
  readonly clock: Clock;
  readonly logger: Logger;
  /** Interval of `: heartbeat` comments. */
  readonly heartbeatIntervalMs: number;
  /** A client whose unsent output grows past this is disconnected. */
  readonly maxBufferedBytes: number;
}

/** Fans backpressure transitions out to Server-Sent Events clients (internal to the control plane). */
export class BackpressureEventStream {
  private readonly clients = new Set<Client>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly options: BackpressureEventStreamOptions) {}

  /** Number of connected clients. */
  get size(): number {
    return this.clients.size;
  }

  /** Starts an SSE response; it ends when the client goes away or {@link close} is called. */
  open(req: IncomingMessage, res: ServerResponse): void {
    res.writeHead(200, {
      "content-type": "text/event-stream; charset=utf-8",
      "cache-control": "no-store",
      connection: "keep-alive",
      "x-accel-buffering": "no",
    });
    if (this.closed) {
      res.end();
      return;
    }
    const client: Client = {
      res,
      timer: undefined,
      close: () => {
        if (!this.clients.delete(client)) return;
        if (client.timer !== undefined) this.options.clock.clearTimeout(client.timer);
        client.timer = undefined;
        req.off("close", client.close);
        res.off("close", client.close);
        res.off("error", client.close);
        if (!res.writableEnded) res.end();
      },
    };
    this.clients.add(client);
    req.once("close", client.close);
    res.once("close", client.close);
    res.on("error", client.close);
    res.flushHeaders();
    this.write(client, `retry: 2000\n: connected\n\n`);
    this.scheduleHeartbeat(client);
  }

  /** Sends one transition to every client as `event: backpressure`. */
  publish(signal: ShardBackpressureSignal): void {
    if (this.clients.size === 0) return;
    const frame = `id: ${this.nextId++}\nevent: backpressure\ndata: ${JSON.stringify(toJson(signal))}\n\n`;
    for (const client of [...this.clients]) this.write(client, frame);
  }

  /** Ends every stream. */
  close(): void {
    this.closed = true;
    for (const client of [...this.clients]) client.close();
  }

  private scheduleHeartbeat(client: Client): void {
    client.timer = this.options.clock.setTimeout(() => {
      client.timer = undefined;
      if (!this.clients.has(client)) return;
      this.write(client, ": heartbeat\n\n");
      if (this.clients.has(client)) this.scheduleHeartbeat(client);
    }, this.options.heartbeatIntervalMs);
  }

  private write(client: Client, frame: string): void {
    try {
      if (client.res.writableLength > this.options.maxBufferedBytes) {
        this.options.logger.warn({}, "Disconnecting a backpressure stream client that does not read.");
        client.close();
        client.res.destroy();
        return;
      }
      client.res.write(frame);
    } catch (err) {
      this.options.logger.warn({ err }, "Writing to a backpressure stream client failed.");
      client.close();
    }
  }
}

/** The JSON form of a signal: times as ISO-8601 strings, like the rest of the wire protocol. */
export function toJson(signal: ShardBackpressureSignal): Record<string, unknown> {
  return {
    shard: signal.shard,
    isActive: signal.isActive,
    pendingCount: signal.pendingCount,
    highWatermark: signal.highWatermark,
    lowWatermark: signal.lowWatermark,
    observedAt: new Date(signal.observedAt).toISOString(),
  };
}
