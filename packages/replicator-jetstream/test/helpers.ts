import { createHash, randomUUID } from "node:crypto";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect, headers, type MsgHdrs, type NatsConnection } from "@nats-io/transport-node";
import { isOmniRelayError, type OmniRelayError, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { encodeReplicationEvent } from "@omnirelay/core/wire";
import { JetStreamResourceLeaseEventLog } from "../src/index.js";
import type { JetStreamEventLogOptions } from "../src/options.js";

/** The machine's NATS with JetStream (started before every session and before CI). */
export const NATS_URL = process.env.OMNIRELAY_NATS_URL ?? "nats://127.0.0.1:4222";

/** A stream of its own for one test file: random name and subject prefix; `remove()` deletes it. */
export interface TestStream {
  readonly stream: string;
  readonly subjectPrefix: string;
  /** A KV bucket name of this test file for snapshots (deleted by `remove()`). */
  readonly snapshotBucket: string;
  /** A KV bucket name of this test file for shard ownership (deleted by `remove()`). */
  readonly ownersBucket: string;
  /** Options of a log on `shard` (a fresh random shard when left out) in this stream. */
  options(shard?: string, extra?: Partial<JetStreamEventLogOptions>): JetStreamEventLogOptions & { shard: string };
  /** Opens a log on `shard` in this stream. */
  open(shard?: string, extra?: Partial<JetStreamEventLogOptions>): Promise<JetStreamResourceLeaseEventLog>;
  /** A connection of the test's own, for looking at the stream directly. */
  connection(): Promise<NatsConnection>;
  /** Messages the stream holds on `shard`'s subject. */
  messagesOn(shard: string): Promise<number>;
  /** Owner-epoch markers stored on `shard`'s subject, in order, with their stream sequences. */
  markersOn(shard: string): Promise<Array<{ seq: number; owner: string; epoch: number }>>;
  /** Deletes the stream and closes the test's connection. */
  remove(): Promise<void>;
}

export function testStream(): TestStream {
  const id = randomUUID().replaceAll("-", "").slice(0, 12);
  const stream = `OMNI_TEST_${id}`;
  const subjectPrefix = `omnitest.${id}`;
  const snapshotBucket = `OMNI_SNAP_${id}`;
  const ownersBucket = `OMNI_OWN_${id}`;
  let nc: NatsConnection | undefined;
  const connection = async () => {
    nc ??= await connect({ servers: NATS_URL });
    return nc;
  };
  const options = (shard = `s${randomUUID().slice(0, 8)}`, extra: Partial<JetStreamEventLogOptions> = {}) => ({
    servers: NATS_URL,
    stream,
    subjectPrefix,
    ...extra,
    shard,
  });
  return {
    stream,
    subjectPrefix,
    snapshotBucket,
    ownersBucket,
    options,
    open: (shard, extra) => JetStreamResourceLeaseEventLog.open(options(shard, extra)),
    connection,
    async messagesOn(shard) {
      const jsm = await jetstreamManager(await connection());
      const info = await jsm.streams.info(stream, { subjects_filter: `${subjectPrefix}.${shard}` });
      return info.state.subjects?.[`${subjectPrefix}.${shard}`] ?? 0;
    },
    async markersOn(shard) {
      const subject = `${subjectPrefix}.${shard}`;
      const jsm = await jetstreamManager(await connection());
      const out: Array<{ seq: number; owner: string; epoch: number }> = [];
      for (let seq = 1; ; seq++) {
        const message = await jsm.streams
          .getMessage(stream, { seq, next_by_subj: subject } as unknown as { seq: number })
          .catch(() => null);
        if (message === null) return out;
        seq = message.seq;
        if (message.header?.get("Omni-Kind") === "owner") {
          out.push({
            seq,
            owner: message.header.get("Omni-Owner"),
            epoch: Number(message.header.get("Omni-Owner-Epoch")),
          });
        }
      }
    },
    async remove() {
      const jsm = await jetstreamManager(await connection());
      for (const name of [stream, `KV_${snapshotBucket}`, `KV_${ownersBucket}`]) {
        await jsm.streams.delete(name).catch(() => undefined);
      }
      await nc?.close();
    },
  };
}

/** Collects an async iterable. */
export async function collect<T>(iterable: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}

/**
 * A digest of events as the log's codec writes them: equal digests mean deep-equal events. Comparing megabyte bodies
 * with `toEqual` takes vitest minutes; this takes milliseconds.
 */
export function digestOf(events: readonly ResourceLeaseReplicationEvent[]): string {
  return createHash("sha256")
    .update(JSON.stringify(events.map(encodeReplicationEvent)))
    .digest("hex");
}

/** Waits until `condition()` holds (polling every 10 ms), failing after `timeoutMs`. */
export async function until(condition: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The OmniRelayError a promise rejects with. */
export async function rejectionOf(promise: Promise<unknown>): Promise<OmniRelayError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isOmniRelayError(error)) throw new Error(`expected an OmniRelayError, got ${String(error)}`);
  return error;
}

const T0 = 1_700_000_000_000;

/** Heartbeat events numbered `from`..`to`. */
export function heartbeats(from: number, to: number): ResourceLeaseReplicationEvent[] {
  const out: ResourceLeaseReplicationEvent[] = [];
  for (let n = from; n <= to; n++) {
    out.push({ sequenceNumber: n, eventType: "Heartbeat", timestamp: T0 + n, metadata: {} });
  }
  return out;
}

/** An Enqueue numbered `n` whose body has `bytes` bytes (its JSON holds them as base64, 4/3 as many). */
export function big(n: number, bytes: number): ResourceLeaseReplicationEvent {
  const body = new Uint8Array(bytes).map((_, i) => (i * 31 + n) & 0xff);
  const payload = { resourceType: "blob", resourceId: `b${n}`, partitionKey: "p", payloadEncoding: "bin", body };
  return {
    sequenceNumber: n,
    eventType: "Enqueue",
    timestamp: T0 + n,
    item: { payload, sequenceId: n, attempt: 1, enqueuedAt: T0 },
    metadata: {},
  };
}

/** The sequence numbers of events. */
export const numbers = (events: readonly ResourceLeaseReplicationEvent[]) => events.map((e) => e.sequenceNumber);

/** The headers a writer puts on part `part` of a batch of events `first`–`last`, for messages written by hand. */
export function batchHeaders(first: number, last: number, part = "1/1"): MsgHdrs {
  const h = headers();
  h.set("Omni-Log", "1");
  h.set("Omni-First", String(first));
  h.set("Omni-Last", String(last));
  h.set("Omni-Part", part);
  return h;
}
