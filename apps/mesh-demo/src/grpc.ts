import type { Dispatcher, Logger, UnaryOutbound } from "@omnirelay/core";
import { grpcAddress } from "./config.js";

// The demo's gRPC side, loaded only when asked for (`--grpc-url`, `--transport grpc`). The specifier is a variable so
// that a bundler leaves it as a runtime import: a bundle built without grpc-js (the container lab) still runs HTTP.
const transportGrpc = "@omnirelay/transport-grpc";

type TransportGrpc = typeof import("@omnirelay/transport-grpc");

async function load(): Promise<TransportGrpc> {
  try {
    return (await import(transportGrpc)) as TransportGrpc;
  } catch (error) {
    throw new Error(`gRPC needs ${transportGrpc} (and @grpc/grpc-js) installed: ${(error as Error).message}`, {
      cause: error,
    });
  }
}

/**
 * Attaches a gRPC inbound to `dispatcher` at `url` (`http://host:port`); it starts and drains with the dispatcher.
 * `url()` gives the bound address once the dispatcher has started (port 0 picks a free one).
 */
export async function openGrpcInbound(options: {
  readonly dispatcher: Dispatcher;
  readonly url: string;
  readonly logger: Logger;
  /** Session keepalive pings (see the inbound's `sessions.pingIntervalMs`). */
  readonly pingIntervalMs?: number;
}): Promise<{ url: () => string }> {
  const { GrpcInbound } = await load();
  const where = new URL(options.url);
  const inbound = new GrpcInbound({
    dispatcher: options.dispatcher,
    host: where.hostname,
    port: Number(where.port || 80),
    shutdownGraceMs: 2_000,
    logger: options.logger,
    ...(options.pingIntervalMs ? { sessions: { pingIntervalMs: options.pingIntervalMs } } : {}),
  });
  return { url: () => `http://${where.hostname}:${inbound.port}` };
}

/** An outbound that calls the queue procedures of the dispatcher's gRPC inbound at `grpcUrl`. */
export async function grpcOutbound(grpcUrl: string): Promise<UnaryOutbound> {
  const { GrpcOutbound } = await load();
  return new GrpcOutbound({ address: grpcAddress(grpcUrl) });
}
