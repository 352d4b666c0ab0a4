import { type ChannelCredentials, credentials, Metadata } from "@grpc/grpc-js";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { type PublishAck, ReplicationHubClient } from "../src/gen/omnirelay/replication/v1/hub.js";
import { toWireEvent } from "../src/wire.js";

/** How a raw call ended: gRPC status code (0 = OK) and trailers. */
export interface RawEnd {
  readonly code: number;
  readonly details: string;
  readonly metadata: Record<string, unknown>;
}

/** TLS material for a raw client: the hub's CA and, for mutual TLS, a client key pair. */
export interface RawTls {
  readonly ca: string;
  readonly cert?: string;
  readonly key?: string;
}

/** Channel credentials for a raw client: plaintext without `tls`. */
export function rawCredentials(tls?: RawTls): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  return credentials.createSsl(
    Buffer.from(tls.ca),
    tls.key ? Buffer.from(tls.key) : null,
    tls.cert ? Buffer.from(tls.cert) : null,
  );
}

/** A generated hub client with its own connection (so two raw streams never share one). */
export function rawClient(address: string, creds: ChannelCredentials): ReplicationHubClient {
  return new ReplicationHubClient(address, creds, { "grpc.use_local_subchannel_pool": 1 });
}

/** Drives the hub's Publish stream by hand, recording acks and how the stream ended. */
export function rawPublish(client: ReplicationHubClient, metadata = new Metadata()) {
  const call = client.publish(metadata);
  const acks: number[] = [];
  const waiters: Array<() => void> = [];
  call.on("data", (ack: PublishAck) => {
    acks.push(ack.ackedSequence);
    for (const w of waiters.splice(0)) w();
  });
  const ended = new Promise<RawEnd>((resolve) => {
    call.on("error", (e: { code: number; details: string; metadata: { getMap(): Record<string, unknown> } }) =>
      resolve({ code: e.code, details: e.details, metadata: e.metadata.getMap() }),
    );
    call.on("end", () => resolve({ code: 0, details: "", metadata: {} }));
  });
  let over = false;
  void ended.then(() => {
    over = true;
    for (const w of waiters.splice(0)) w();
  });
  /** Resolves once `count` acks arrived; rejects if the stream ends first. */
  const nextAck = (count: number) =>
    new Promise<void>((resolve, reject) => {
      const check = () => {
        if (acks.length >= count) resolve();
        else if (over) reject(new Error(`stream ended after ${acks.length} ack(s), wanted ${count}`));
        else waiters.push(check);
      };
      check();
    });
  const hello = (nodeId: string, shard = "", headSequence = 0) =>
    call.write({ hello: { nodeId, shard, headSequence } });
  const batch = (events: readonly ResourceLeaseReplicationEvent[]) =>
    call.write({ batch: { events: events.map(toWireEvent), headSequence: events.at(-1)?.sequenceNumber ?? 0 } });
  return { call, acks, nextAck, ended, hello, batch };
}

/** gRPC status codes the tests assert on. */
export const Status = {
  OK: 0,
  CANCELLED: 1,
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  UNAUTHENTICATED: 16,
} as const;
