import { type JetStreamManager, jetstreamManager, StorageType } from "@nats-io/jetstream";
import { type KV, Kvm } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import { OmniRelayError } from "@omnirelay/core";
import { unavailableError } from "./errors.js";

/** Default bucket of the membership keys (one per live node, expiring after the bucket's TTL). */
export const DEFAULT_MEMBERS_BUCKET = "OMNIRELAY_MEMBERS";
/** Default bucket of the operators' pins (shard → node). */
export const DEFAULT_PINS_BUCKET = "OMNIRELAY_PINS";
/** Default bucket of the ownership keys (as `JetStreamShardOwnership`). */
export const DEFAULT_OWNERS_BUCKET = "OMNIRELAY_OWNERS";

/** Bucket names: letters, digits, `_` and `-`. Internal. */
export const BUCKET_NAME = /^[A-Za-z0-9_-]+$/;
/** Node ids and shards as KV keys: tokens of letters, digits, `_`, `-`, separated by single dots. Internal. */
export const KEY = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/;

/** Checks a bucket name option. Internal. */
export function bucketOption(name: string, value: string | undefined, fallback: string): string {
  const bucket = value ?? fallback;
  if (typeof bucket !== "string" || !BUCKET_NAME.test(bucket)) {
    throw OmniRelayError.invalidOption(name, `Option '${name}' must match ${BUCKET_NAME.source}.`);
  }
  return bucket;
}

/** Opens a KV bucket, creating it (history 1, file storage) when absent; an existing one keeps its settings. */
export async function openBucket(
  nc: NatsConnection,
  bucket: string,
  options: { readonly replicas: number; readonly ttlMs?: number },
): Promise<KV> {
  try {
    return await new Kvm(nc).create(bucket, {
      history: 1,
      replicas: options.replicas,
      storage: StorageType.File,
      allow_direct: false,
      ...(options.ttlMs === undefined ? {} : { ttl: options.ttlMs }),
    });
  } catch (error) {
    throw unavailableError(error, `KV_${bucket}`, "open or create the bucket");
  }
}

/** One live (PUT) key of a bucket. Internal. */
export interface BucketEntry {
  readonly key: string;
  readonly value: Uint8Array;
  readonly revision: number;
}

/**
 * Every key of a bucket whose last operation is a put (deleted, purged and expired keys are left out): the stream's
 * subjects (one request), then each key's last value. A bucket that does not exist reads as empty. Internal.
 */
export async function readBucket(nc: NatsConnection, bucket: string, jsm?: JetStreamManager): Promise<BucketEntry[]> {
  const stream = `KV_${bucket}`;
  try {
    const manager = jsm ?? (await jetstreamManager(nc));
    let subjects: Record<string, number>;
    try {
      const info = await manager.streams.info(stream, { subjects_filter: `$KV.${bucket}.>` });
      subjects = info.state.subjects ?? {};
    } catch (error) {
      if (isStreamNotFound(error)) return [];
      throw error;
    }
    const prefix = `$KV.${bucket}.`;
    const kv = await new Kvm(nc).open(bucket, { allow_direct: false });
    const keys = Object.keys(subjects)
      .map((subject) => subject.slice(prefix.length))
      .sort();
    const entries = await Promise.all(keys.map((key) => kv.get(key)));
    const out: BucketEntry[] = [];
    for (const entry of entries) {
      if (entry !== null && entry.operation === "PUT") {
        out.push({ key: entry.key, value: entry.value, revision: entry.revision });
      }
    }
    return out;
  } catch (error) {
    throw unavailableError(error, stream, "read");
  }
}

/** Whether JetStream answered "stream not found". Internal. */
export function isStreamNotFound(error: unknown): boolean {
  const e = error as { code?: unknown; message?: unknown; api_error?: { err_code?: unknown } } | null;
  return e?.api_error?.err_code === 10059 || e?.message === "stream not found";
}

/** Parses a JSON value as an object, or `undefined`. Internal. */
export function parseJson(value: Uint8Array): Record<string, unknown> | undefined {
  try {
    const parsed = JSON.parse(new TextDecoder().decode(value)) as unknown;
    return parsed !== null && typeof parsed === "object" ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** A live member: its node id and URL. */
export interface ShardMember {
  readonly nodeId: string;
  readonly url: string;
}

/** The live members in a membership bucket (keys that did not expire or get deleted). Internal. */
export async function readMembers(nc: NatsConnection, bucket: string): Promise<ShardMember[]> {
  return (await readBucket(nc, bucket)).map((entry) => {
    const record = parseJson(entry.value);
    return { nodeId: entry.key, url: typeof record?.url === "string" ? record.url : "" };
  });
}

/** The pins in a pins bucket: shard → node id. Internal. */
export async function readPins(nc: NatsConnection, bucket: string): Promise<Map<string, string>> {
  const pins = new Map<string, string>();
  for (const entry of await readBucket(nc, bucket)) {
    const record = parseJson(entry.value);
    if (typeof record?.node === "string" && record.node !== "") pins.set(entry.key, record.node);
  }
  return pins;
}
