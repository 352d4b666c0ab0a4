import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { CreateBucketCommand, S3Client } from "@aws-sdk/client-s3";
import { BlobServiceClient } from "@azure/storage-blob";
import { Storage } from "@google-cloud/storage";
import {
  ResourceLeaseQueue,
  type ResourceLeaseQueueSnapshot,
  type ResourceLeaseReplicationEvent,
  type ResourceLeaseReplicator,
} from "@omnirelay/core";
import type { ResourceLeaseObjectStore } from "@omnirelay/core/replication";
import {
  GrpcReplicationHub,
  GrpcResourceLeaseReplicator,
  InMemoryReplicationHubStore,
  sourceKey,
} from "@omnirelay/replicator-grpc";
import { ObjectStorageResourceLeaseReplicator } from "@omnirelay/replicator-object-storage";
import { AzureBlobResourceLeaseObjectStore } from "@omnirelay/replicator-object-storage/azure";
import { FileSystemResourceLeaseObjectStore } from "@omnirelay/replicator-object-storage/fs";
import { GcsResourceLeaseObjectStore } from "@omnirelay/replicator-object-storage/gcs";
import { S3ResourceLeaseObjectStore } from "@omnirelay/replicator-object-storage/s3";
import { openDurableResourceLeaseQueue, SqliteResourceLeaseReplicator } from "@omnirelay/replicator-sqlite";
import S3rver from "s3rver";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { repoRoot } from "./harness.js";
import { cliCommand, runShell, startDispatcherProcess } from "./processes.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";

// The "Reconstitute a shard" runbook of docs/guides/operations.md, its `sh` blocks run against each kind of sink: a
// live queue writes through the real sink, the runbook rebuilds from it (verified) and restores into a dispatcher
// process; then one byte in the middle of the stored stream is flipped and the rebuild names that event.
const doc = readFileSync(join(repoRoot, "docs/guides/operations.md"), "utf8");
const runbook = doc.slice(doc.indexOf("## Reconstitute a shard"));
const [rebuildStep = "", restoreStep = ""] = [...runbook.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
/** The event whose stored bytes the tamper checks flip: the Enqueue of `r-6`. */
const TAMPERED = 6;

/** A workload over every kind of state: pending, delayed, leased, completed, requeued and dead-lettered items. */
async function workload(queue: ResourceLeaseQueue): Promise<void> {
  for (let i = 1; i <= 9; i++) {
    const body = new TextEncoder().encode(`{"n":${i}}`);
    await queue.enqueue({
      resourceType: "t",
      resourceId: `r-${i}`,
      partitionKey: `p${i % 3}`,
      payloadEncoding: "json",
      body,
    });
  }
  await queue.enqueue({
    resourceType: "t",
    resourceId: "later",
    partitionKey: "p",
    payloadEncoding: "json",
    delayMs: 60_000,
  });
  const grants = await queue.lease({ peerId: "worker-1", maxItems: 4 });
  await queue.complete(grants[0]!.ownershipToken);
  await queue.fail(grants[1]!.ownershipToken, { reason: "retry me" });
  await queue.fail(grants[2]!.ownershipToken, { reason: "poison", requeue: false });
  await queue.heartbeat(grants[3]!.ownershipToken);
}

/** Replaces the first `needle` in any file under `dir` with `replacement` (same length): a flipped byte on disk. */
function flipInFiles(dir: string, needle: string, replacement: string): string {
  for (const name of readdirSync(dir, { recursive: true }) as string[]) {
    const path = join(dir, name);
    if (!statSync(path).isFile()) continue;
    const bytes = readFileSync(path);
    const at = bytes.indexOf(needle);
    if (at < 0) continue;
    bytes.write(replacement, at);
    writeFileSync(path, bytes);
    return path;
  }
  throw new Error(`'${needle}' is in no file under ${dir}`);
}

let dir: string;
let node: Awaited<ReturnType<typeof startDispatcherProcess>>;
let s3: S3rver;
let s3Port: number;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "omnirelay-reconstitute-"));
  mkdirSync(join(dir, "bin"));
  writeFileSync(join(dir, "bin", "omnirelay"), `#!/usr/bin/env bash\nexec ${cliCommand} "$@"\n`, { mode: 0o755 });
  mkdirSync(join(dir, "node"));
  node = await startDispatcherProcess(join(dir, "node"));
  mkdirSync(join(dir, "s3rver"));
  s3 = new S3rver({ address: "127.0.0.1", port: 0, silent: true, directory: join(dir, "s3rver") });
  s3Port = ((await s3.run()) as AddressInfo).port;
});
afterAll(async () => {
  node?.stop();
  await s3?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const s3Env = () => ({
  AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${s3Port}`,
  AWS_ACCESS_KEY_ID: "S3RVER",
  AWS_SECRET_ACCESS_KEY: "S3RVER",
  AWS_REGION: "us-east-1",
  AWS_REQUEST_CHECKSUM_CALCULATION: "WHEN_REQUIRED",
  AWS_RESPONSE_CHECKSUM_VALIDATION: "WHEN_REQUIRED",
});

/** Runs a runbook step with `SOURCE` and a fresh `WORK` folder. */
async function step(script: string, source: string, env: Record<string, string> = {}) {
  const work = mkdtempSync(join(dir, "work-"));
  const run = await runShell(`set -euo pipefail\n${script}`, {
    ...env,
    SOURCE: source,
    WORK: work,
    OMNIRELAY_URL: node.url,
    PATH: `${join(dir, "bin")}:${process.env.PATH}`,
  });
  return { ...run, work };
}

/** Runs the runbook against `source` and checks the rebuilt state, the drain file and the restore. */
async function reconstitutes(source: string, live: ResourceLeaseQueueSnapshot, env: Record<string, string> = {}) {
  const rebuilt = await step(rebuildStep, source, env);
  expect(rebuilt.code, rebuilt.stderr).toBe(0);
  expect(rebuilt.stdout).toBe(
    `verified events 1..${live.lastEventSequence}, chain from 1, last hash ${live.lastEventHash}\n`,
  );
  const log = await SqliteResourceLeaseReplicator.open({ path: join(rebuilt.work, "shard.db") });
  const queue = await ResourceLeaseQueue.rebuild(log.read(1), {}, { activeLeases: "keep" });
  expect(queue.snapshot()).toEqual(live);
  await log.close();
  const drain = JSON.parse(readFileSync(join(rebuilt.work, "shard-drain.json"), "utf8")) as { items: unknown[] };
  expect(drain.items).toHaveLength(live.pending.length + live.delayed.length + live.active.length);
  const before = Number((await node.client().stats()).pendingCount);
  const restored = await step(restoreStep.replaceAll("$WORK", rebuilt.work), source, env);
  expect(restored.code, restored.stderr).toBe(0);
  expect(Number(restored.stdout.trim().split("\n").at(-1))).toBe(before + drain.items.length);
}

/** Runs the rebuild step against a tampered `source`: exit 6, the flipped event named. */
async function namesTheFlippedEvent(source: string, code: string, env: Record<string, string> = {}) {
  const run = await step(rebuildStep, source, env);
  expect(run.code, run.stderr).toBe(6);
  expect(run.stderr).toContain(`error: ${code}: the stream diverges at event ${TAMPERED}: `);
  expect(readdirSync(run.work)).toEqual(["rebuild.json"]);
  return run.stderr;
}

/** The answer the runbook shows for a copy that diverges. */
const divergedExample = /```text\n(error: [^\n]*)\n```/.exec(runbook)?.[1];

describe("docs/guides/operations.md: Reconstitute a shard", () => {
  it("from a SQLite log; a flipped byte fails the row's checksum at its sequence number", async () => {
    mkdirSync(join(dir, "sqlite-live"));
    const path = join(dir, "sqlite-live", "live.db");
    const durable = await openDurableResourceLeaseQueue({ path, snapshotEveryEvents: 0 });
    await workload(durable.queue);
    const live = durable.queue.snapshot();
    await durable.close();
    await reconstitutes(`sqlite:${path}`, live);
    flipInFiles(join(dir, "sqlite-live"), "r-6", "r-7");
    await namesTheFlippedEvent(`sqlite:${path}`, "resourcelease.replication.event_unreadable");
  });

  it("from a filesystem audit log; a flipped byte breaks the chain at its event", async () => {
    const root = join(dir, "fs-audit");
    const replicator = new ObjectStorageResourceLeaseReplicator(
      new FileSystemResourceLeaseObjectStore({ rootDirectory: root }),
    );
    const live = await liveThrough(replicator);
    await reconstitutes(`file:${root}`, live);
    flipInFiles(root, '"r-6"', '"r-7"');
    const stderr = await namesTheFlippedEvent(`file:${root}`, "resourcelease.replication.chain_broken");
    expect(stderr).toBe(`${divergedExample}\n`);
  });

  it("from an S3 audit log (s3rver); a flipped byte breaks the chain at its event", async () => {
    const client = new S3Client({
      endpoint: `http://127.0.0.1:${s3Port}`,
      region: "us-east-1",
      forcePathStyle: true,
      credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" },
    });
    await client.send(new CreateBucketCommand({ Bucket: "audit" }));
    const store = new S3ResourceLeaseObjectStore({ client, bucket: "audit" });
    const live = await liveThrough(new ObjectStorageResourceLeaseReplicator(store, { keyPrefix: "shard-1/" }));
    client.destroy();
    await reconstitutes("s3://audit/shard-1", live, s3Env());
    flipInFiles(join(dir, "s3rver"), '"r-6"', '"r-7"');
    await namesTheFlippedEvent("s3://audit/shard-1", "resourcelease.replication.chain_broken", s3Env());
  });

  it("from an Azure Blob audit log (azurite); a flipped byte breaks the chain at its event", async () => {
    const { url, child } = await startAzurite();
    try {
      const connection = `DefaultEndpointsProtocol=http;AccountName=${AZ_ACCOUNT};AccountKey=${AZ_KEY};BlobEndpoint=${url}/${AZ_ACCOUNT};`;
      const container = BlobServiceClient.fromConnectionString(connection).getContainerClient("audit");
      await container.create();
      const store = new AzureBlobResourceLeaseObjectStore({ container });
      const live = await liveThrough(new ObjectStorageResourceLeaseReplicator(store, { keyPrefix: "shard-1/" }));
      const env = { AZURE_STORAGE_CONNECTION_STRING: connection };
      await reconstitutes("azure://audit/shard-1", live, env);
      await flipInObjects(store, "shard-1/");
      await namesTheFlippedEvent("azure://audit/shard-1", "resourcelease.replication.chain_broken", env);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("from a GCS audit log (the object-storage tests' JSON-API fake); a flipped byte breaks the chain at its event", async () => {
    const fake = await startGcsFake();
    try {
      const storage = new Storage({
        apiEndpoint: fake.endpoint,
        projectId: "omnirelay-test",
        useAuthWithCustomEndpoint: false,
      });
      await storage.createBucket("audit");
      const store = new GcsResourceLeaseObjectStore({ bucket: storage.bucket("audit") });
      const live = await liveThrough(new ObjectStorageResourceLeaseReplicator(store, { keyPrefix: "shard-1/" }));
      const env = { STORAGE_EMULATOR_HOST: `${fake.endpoint}/storage/v1`, GCLOUD_PROJECT: "omnirelay-test" };
      await reconstitutes("gs://audit/shard-1", live, env);
      await flipInObjects(store, "shard-1/");
      await namesTheFlippedEvent("gs://audit/shard-1", "resourcelease.replication.chain_broken", env);
    } finally {
      await fake.close();
    }
  });

  it("from the gRPC replication hub; an altered event in its store breaks the chain at that event", async () => {
    const store = new InMemoryReplicationHubStore();
    const hub = new GrpcReplicationHub({ store, host: "127.0.0.1", port: 0, auth: { allowUnauthenticated: true } });
    await hub.start();
    const replicator = new GrpcResourceLeaseReplicator({
      hubs: [`127.0.0.1:${hub.port}`],
      nodeId: "node-a",
      shard: "s1",
    });
    replicator.start();
    const live = await liveThrough(replicator, () => replicator.flush());
    await replicator.close();
    try {
      await reconstitutes(`hub:127.0.0.1:${hub.port}/node-a/s1`, live);
      // The hub's store holds the events as objects: alter the stored one in place, as a damaged store would serve it.
      const logs = (store as unknown as { logs: Map<string, { log: { events: ResourceLeaseReplicationEvent[] } }> })
        .logs;
      const stored = logs.get(sourceKey({ nodeId: "node-a", shard: "s1" }))!.log.events;
      stored[TAMPERED - 1] = { ...stored[TAMPERED - 1]!, peerId: "intruder" };
      await namesTheFlippedEvent(`hub:127.0.0.1:${hub.port}/node-a/s1`, "resourcelease.replication.chain_broken");
    } finally {
      await hub.close();
    }
  });
});

/** A queue publishing through `replicator`, driven through the workload; its snapshot once everything is stored. */
async function liveThrough(replicator: ResourceLeaseReplicator, settle?: () => Promise<void>) {
  const queue = new ResourceLeaseQueue({ replicator });
  await workload(queue);
  await settle?.();
  const live = queue.snapshot();
  await queue.close();
  return live;
}

/** Rewrites the segment holding `"r-6"` through the store's own API, one byte changed (a store that serves damage). */
async function flipInObjects(store: ResourceLeaseObjectStore, prefix: string) {
  for await (const { key } of store.list(prefix)) {
    const bytes = Buffer.from((await store.get(key)) ?? []);
    const at = bytes.indexOf('"r-6"');
    if (at < 0) continue;
    bytes.write('"r-7"', at);
    await store.put(key, bytes, { contentType: "application/x-ndjson" });
    return;
  }
  throw new Error("no segment holds r-6");
}

/**
 * The GCS JSON-API fake of the object-storage package's tests (one copy of it): imported by path at run time, since
 * it lives outside this package's sources.
 */
async function startGcsFake(): Promise<{ endpoint: string; close(): Promise<void> }> {
  const path = new URL("../../replicator-object-storage/test/gcs-fake.ts", import.meta.url).href;
  return ((await import(path)) as { startGcsFake: typeof startGcsFake }).startGcsFake();
}

// Azurite's documented development account (public, not a secret).
const AZ_ACCOUNT = "devstoreaccount1";
const AZ_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/** Azurite's blob service on a free port (read from its stdout), in memory. */
async function startAzurite(): Promise<{ url: string; child: ChildProcess }> {
  const main = join(dirname(createRequire(import.meta.url).resolve("azurite/package.json")), "dist/src/blob/main.js");
  const args = [
    main,
    "--blobHost",
    "127.0.0.1",
    "--blobPort",
    "0",
    "--inMemoryPersistence",
    "--extentMemoryLimit",
    "64",
  ];
  args.push("--skipApiVersionCheck", "--disableTelemetry", "--silent", "--loose");
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "pipe"] });
  const url = await new Promise<string>((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => reject(new Error(`azurite did not start: ${output}`)), 20_000);
    child.stdout?.on("data", (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listens on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1] as string);
      }
    });
  });
  return { url, child };
}
