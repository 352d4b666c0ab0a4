import { ErrorCodes, type ResourceLeaseQueueSnapshot, type ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { usageError } from "../output.js";

/** One read of a stream: an event, or a place that could not be read (named by the first sequence it hides). */
export type StreamEntry =
  | { readonly event: ResourceLeaseReplicationEvent }
  | { readonly unreadable: string; readonly sequenceNumber?: number };

/** A stream opened from a `--from` source. */
export interface OpenedStream {
  /** The snapshot the stream continues (a compacted SQLite log), when the events do not start at 1. */
  readonly snapshot?: ResourceLeaseQueueSnapshot;
  readonly entries: AsyncIterable<StreamEntry>;
  close(): Promise<void>;
}

/** Where the hub source reads: `--node` and `--shard`. */
export interface SourceOptions {
  readonly node?: string;
  readonly shard?: string;
}

/**
 * Loads an optional peer package at run time (the name sits in a variable so the bundler leaves the import alone).
 * @throws CliError (exit 2) `omnirelay.cli.package_not_installed` with the `npm install` line when it is missing.
 */
export async function loadOptional<T>(name: string, what: string): Promise<T> {
  try {
    return (await import(name)) as T;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    if (e?.code !== "ERR_MODULE_NOT_FOUND" || !e.message.includes(`'${name.split("/").slice(0, 2).join("/")}`)) {
      throw error;
    }
    throw usageError(
      `${ErrorCodes.rpc.cliPackageNotInstalled}: ${what} needs the package ${name}, which is not installed. ` +
        `Install it next to @omnirelay/cli: npm install ${name.split("/").slice(0, 2).join("/")}.`,
    );
  }
}

type Sqlite = typeof import("@omnirelay/replicator-sqlite");
type Grpc = typeof import("@omnirelay/replicator-grpc");
type ObjectStorage = typeof import("@omnirelay/replicator-object-storage");
type Store = ConstructorParameters<ObjectStorage["ObjectStorageEventReader"]>[0]["store"];

/** Opens `sqlite:<path>`: the log's snapshot (if its events no longer start at 1) and its events. */
async function openSqlite(path: string): Promise<OpenedStream> {
  const { SqliteResourceLeaseReplicator } = await loadOptional<Sqlite>("@omnirelay/replicator-sqlite", "sqlite:");
  const log = await SqliteResourceLeaseReplicator.open({ path, verifyOnOpen: "on-read" });
  let first: number | undefined;
  for await (const e of log.read(1, 1)) first = e.sequenceNumber;
  const snapshot = first === 1 ? undefined : (log.latestSnapshot() ?? undefined);
  const from = snapshot ? snapshot.lastEventSequence + 1 : 1;
  async function* entries(): AsyncGenerator<StreamEntry> {
    let next = from;
    try {
      for await (const event of log.read(from)) {
        next = event.sequenceNumber + 1;
        yield { event };
      }
    } catch (error) {
      const at = Number((error as { metadata?: Record<string, string> }).metadata?.sequence ?? next);
      yield { unreadable: (error as Error).message, sequenceNumber: Number.isSafeInteger(at) ? at : next };
    }
  }
  return { ...(snapshot ? { snapshot } : {}), entries: entries(), close: () => log.close() };
}

/** Opens `hub:<host:port>[/<node>[/<shard>]]` (or `--node` / `--shard`): the stored stream, not following. */
async function openHub(spec: string, options: SourceOptions): Promise<OpenedStream> {
  const [address = "", node = options.node, shard = options.shard ?? ""] = spec.split("/");
  if (!node) throw usageError("--from hub:<host:port> needs a node: hub:<host:port>/<node>[/<shard>] or --node <id>");
  const { GrpcReplicationHubClient } = await loadOptional<Grpc>("@omnirelay/replicator-grpc", "hub:");
  const client = new GrpcReplicationHubClient({ address });
  const source = { nodeId: node, shard };
  async function* entries(): AsyncGenerator<StreamEntry> {
    try {
      for await (const event of client.subscribe({ source, follow: false })) yield { event };
    } catch (error) {
      yield { unreadable: (error as Error).message };
    }
  }
  return { entries: entries(), close: async () => client.close() };
}

/** Reads an object-storage prefix: gaps and corrupt segments become unreadable entries at their first sequence. */
async function openObjects(store: Store, keyPrefix: string): Promise<OpenedStream> {
  const os = await loadOptional<ObjectStorage>("@omnirelay/replicator-object-storage", "object storage");
  const reader = new os.ObjectStorageEventReader({ store, keyPrefix });
  async function* entries(): AsyncGenerator<StreamEntry> {
    let corrupt: string | undefined;
    for await (const entry of reader.entries()) {
      if (entry.kind === "event") yield { event: entry.event };
      else if (entry.kind === "corrupt") corrupt ??= `segment ${entry.key} (${entry.reason}): ${entry.message}`;
      else if (corrupt) {
        // The events of the corrupt segment: unreadable from the first of them.
        yield { unreadable: corrupt, sequenceNumber: entry.fromSequence };
        return;
      }
      // A plain gap (a segment missing): the next event shows it as a jump in sequence numbers.
    }
    if (corrupt) yield { unreadable: corrupt };
  }
  return { entries: entries(), close: async () => undefined };
}

/** Splits `bucket/prefix` into the bucket and a key prefix ending in `/` (default `resourcelease/`). */
function bucketAndPrefix(rest: string): { bucket: string; prefix: string } {
  const [bucket = "", ...parts] = rest.split("/");
  if (!bucket) throw usageError(`--from needs a bucket: '${rest}'`);
  const prefix = parts.filter(Boolean).join("/");
  return { bucket, prefix: prefix ? `${prefix}/` : "resourcelease/" };
}

async function objectStore(scheme: string, bucket: string): Promise<Store> {
  if (scheme === "s3") {
    const { S3Client } = await loadOptional<typeof import("@aws-sdk/client-s3")>("@aws-sdk/client-s3", "s3://");
    const s3 = await loadOptional<typeof import("@omnirelay/replicator-object-storage/s3")>(
      "@omnirelay/replicator-object-storage/s3",
      "s3://",
    );
    // The SDK reads credentials, region and AWS_ENDPOINT_URL(_S3) itself; an endpoint (an emulator, MinIO) wants paths.
    const endpoint = process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
    const client = new S3Client({ region: process.env.AWS_REGION ?? "us-east-1", forcePathStyle: Boolean(endpoint) });
    return new s3.S3ResourceLeaseObjectStore({ client, bucket });
  }
  if (scheme === "gs") {
    const { Storage } = await loadOptional<typeof import("@google-cloud/storage")>("@google-cloud/storage", "gs://");
    const gcs = await loadOptional<typeof import("@omnirelay/replicator-object-storage/gcs")>(
      "@omnirelay/replicator-object-storage/gcs",
      "gs://",
    );
    return new gcs.GcsResourceLeaseObjectStore({ bucket: new Storage().bucket(bucket) });
  }
  const { BlobServiceClient } = await loadOptional<typeof import("@azure/storage-blob")>(
    "@azure/storage-blob",
    "azure://",
  );
  const azure = await loadOptional<typeof import("@omnirelay/replicator-object-storage/azure")>(
    "@omnirelay/replicator-object-storage/azure",
    "azure://",
  );
  const connection = process.env.AZURE_STORAGE_CONNECTION_STRING;
  if (!connection) throw usageError("--from azure:// needs AZURE_STORAGE_CONNECTION_STRING");
  const container = BlobServiceClient.fromConnectionString(connection).getContainerClient(bucket);
  return new azure.AzureBlobResourceLeaseObjectStore({ container });
}

/**
 * Opens a `--from` source: `sqlite:<path>`, `hub:<host:port>[/<node>[/<shard>]]`, `file:<dir>[#prefix]`, `s3://bucket/prefix`,
 * `gs://bucket/prefix`, `azure://container/prefix`.
 * @throws CliError usage for an unknown source.
 */
export async function openSource(spec: string, options: SourceOptions): Promise<OpenedStream> {
  const url = /^([a-z0-9]+):(?:\/\/)?(.+)$/.exec(spec);
  const scheme = url?.[1];
  const rest = url?.[2] ?? "";
  if (scheme === "sqlite") return openSqlite(rest);
  if (scheme === "hub") return openHub(rest, options);
  if (scheme === "file") {
    const fs = await loadOptional<typeof import("@omnirelay/replicator-object-storage/fs")>(
      "@omnirelay/replicator-object-storage/fs",
      "file:",
    );
    const [dir = "", prefix = "resourcelease/"] = rest.split("#");
    return openObjects(new fs.FileSystemResourceLeaseObjectStore({ rootDirectory: dir }), prefix);
  }
  if (scheme === "s3" || scheme === "gs" || scheme === "azure") {
    const { bucket, prefix } = bucketAndPrefix(rest);
    return openObjects(await objectStore(scheme, bucket), prefix);
  }
  throw usageError(
    `--from '${spec}': expected sqlite:<path>, hub:<host:port>, file:<dir>, s3://…, gs://… or azure://…`,
  );
}
