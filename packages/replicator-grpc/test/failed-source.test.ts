import { ErrorCodes, type Logger, OmniRelayError } from "@omnirelay/core";
import { afterEach, describe, expect, it } from "vitest";
import {
  GrpcReplicationHub,
  GrpcReplicationHubClient,
  GrpcResourceLeaseReplicator,
  InMemoryReplicationHubStore,
  type ReplicationHubLog,
  type ReplicationSourceId,
  sourceKey,
} from "../src/index.js";
import { events, fast, until } from "./helpers.js";
import { rawClient, rawCredentials, rawPublish } from "./raw.js";

// One source's log cannot be opened when the hub starts (a damaged file in the app's SQLite store; here a store whose
// open refuses that source as the SQLite store does). The hub must start anyway, serve the other sources, list the
// failed one with its code, answer its calls with the open error, and take it back once the log opens again.

const UNAVAILABLE = 14;
const A = { nodeId: "node-a", shard: "" };
const B = { nodeId: "node-b", shard: "billing" };

const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** The in-memory store with faults: `damaged` sources refuse to open, `removed` ones are no longer listed. */
class FaultyStore extends InMemoryReplicationHubStore {
  readonly damaged = new Set<string>();
  readonly removed = new Set<string>();
  listFails = false;
  readonly opens: string[] = [];

  override async open(source: ReplicationSourceId): Promise<ReplicationHubLog> {
    const key = sourceKey(source);
    this.opens.push(key);
    if (this.damaged.has(key)) {
      throw new OmniRelayError({
        status: "data-loss",
        code: ErrorCodes.sqlite.corrupt,
        message: `The log '${key}.db' is damaged at sequence 3: page checksum mismatch.`,
        metadata: { file: "wal", sequence: "3" },
      });
    }
    return super.open(source);
  }

  override async list(): Promise<readonly ReplicationSourceId[]> {
    if (this.listFails) throw new Error("EIO: cannot read the data directory");
    return (await super.list()).filter((s) => !this.removed.has(sourceKey(s)));
  }
}

function recordingLogger() {
  const lines: Array<{ level: string; obj: Record<string, unknown>; msg?: string }> = [];
  const at =
    (level: string) =>
    (obj: object | string, msg?: string): void => {
      lines.push({ level, obj: typeof obj === "string" ? { msg: obj } : (obj as Record<string, unknown>), msg });
    };
  const logger: Logger = { debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
  return { logger, lines };
}

async function startHub(store: FaultyStore, options: { failedSourceRetryMs?: number; logger?: Logger } = {}) {
  const hub = new GrpcReplicationHub({ store, shutdownGraceMs: 100, auth: { allowUnauthenticated: true }, ...options });
  cleanup.push(() => hub.close());
  await hub.start();
  return { hub, address: `127.0.0.1:${hub.port}` };
}

function replicator(address: string, source: ReplicationSourceId) {
  const r = new GrpcResourceLeaseReplicator({ hubs: [address], nodeId: source.nodeId, shard: source.shard, ...fast });
  cleanup.push(() => r.close().catch(() => undefined));
  return r;
}

function client(address: string) {
  const c = new GrpcReplicationHubClient({ address, deadlineMs: 2000 });
  cleanup.push(() => c.close());
  return c;
}

async function readAll(c: GrpcReplicationHubClient, source: ReplicationSourceId): Promise<number[]> {
  const out: number[] = [];
  for await (const e of c.subscribe({ source, follow: false })) out.push(e.sequenceNumber);
  return out;
}

const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** Two sources with 5 events each, then the hub is stopped and B's log is damaged. */
async function twoSourcesThenDamageB(store: FaultyStore): Promise<void> {
  const { hub, address } = await startHub(store);
  await replicator(address, A).publish(events(1, 5, "a"));
  await replicator(address, B).publish(events(1, 5, "b"));
  await hub.close();
  store.damaged.add(sourceKey(B));
}

describe("GrpcReplicationHub with a source whose log cannot be opened", () => {
  it("starts, serves the other source, lists the failed one with its code and answers its calls with the open error", async () => {
    const store = new FaultyStore();
    await twoSourcesThenDamageB(store);
    const { logger, lines } = recordingLogger();
    const { hub, address } = await startHub(store, { logger, failedSourceRetryMs: 60_000 });
    expect(hub.state).toBe("running");

    // Logged once, at error level, with the source, the code and the cause's message.
    const errors = lines.filter((l) => l.level === "error");
    expect(errors).toHaveLength(1);
    expect(errors[0]!.obj).toMatchObject({
      source: "node-b@billing",
      code: ErrorCodes.replicationHub.storeFailed,
      cause: { code: ErrorCodes.sqlite.corrupt },
    });
    expect(String(errors[0]!.obj.message)).toContain("page checksum mismatch");

    // Listed as failed wherever sources are listed.
    const statuses = hub.sourceStatuses();
    expect(statuses.map((s) => [sourceKey(s), s.failed?.code])).toEqual([
      ["node-a", undefined],
      ["node-b@billing", ErrorCodes.replicationHub.storeFailed],
    ]);
    expect(statuses[0]!.lastSequence).toBe(5);
    expect(statuses[1]!.failed).toMatchObject({ causeCode: ErrorCodes.sqlite.corrupt });
    const metrics = hub.metrics();
    expect(metrics).toContain('omnirelay_replication_hub_source_failed{node_id="node-a",shard=""} 0');
    expect(metrics).toContain(
      `omnirelay_replication_hub_source_failed{node_id="node-b",shard="billing",code="${ErrorCodes.replicationHub.storeFailed}",cause_code="${ErrorCodes.sqlite.corrupt}"} 1`,
    );
    expect(metrics).toContain('omnirelay_replication_hub_last_sequence{node_id="node-a",shard=""} 5');
    expect(metrics).not.toContain('omnirelay_replication_hub_last_sequence{node_id="node-b"');
    const reader = client(address);
    const listed = await reader.sources();
    expect(listed.map((s) => [sourceKey(s), s.lastSequence, s.failed?.causeCode])).toEqual([
      ["node-a", 5, undefined],
      ["node-b@billing", 0, ErrorCodes.sqlite.corrupt],
    ]);

    // The healthy source publishes and is read back whole.
    await replicator(address, A).publish(events(6, 8, "a"));
    expect(await readAll(reader, A)).toEqual(range(1, 8));
    expect(store.events(A).map((e) => e.sequenceNumber)).toEqual(range(1, 8));

    // The failed one: Subscribe, Checkpoint and a publish stream get UNAVAILABLE store_failed, nothing is stored.
    const refused = { status: "unavailable", code: ErrorCodes.replicationHub.storeFailed };
    await expect(readAll(reader, B)).rejects.toMatchObject(refused);
    await expect(reader.checkpoint(B)).rejects.toMatchObject(refused);
    await expect(reader.checkpoint(B)).rejects.toThrow(/page checksum mismatch/);
    const raw = rawPublish(rawClient(address, rawCredentials()));
    raw.hello(B.nodeId, B.shard, 9);
    raw.batch(events(6, 9, "b"));
    const end = await raw.ended;
    expect(end.code).toBe(UNAVAILABLE);
    expect(end.metadata["omnirelay-error-code"]).toBe(ErrorCodes.replicationHub.storeFailed);
    expect(end.details).toContain("page checksum mismatch");
    raw.call.cancel();
    expect(raw.acks).toEqual([]);
    expect(store.events(B).map((e) => e.sequenceNumber)).toEqual(range(1, 5));
    // Within failedSourceRetryMs, hellos do not try the damaged log again, and nothing more is logged.
    expect(store.opens.filter((k) => k === "node-b@billing")).toHaveLength(2);
    expect(lines.filter((l) => l.level === "error")).toHaveLength(1);
  });

  it("a publish hello opens the log again once it is repaired, and the source is served without a restart", async () => {
    const store = new FaultyStore();
    await twoSourcesThenDamageB(store);
    const { logger, lines } = recordingLogger();
    const { hub, address } = await startHub(store, { logger, failedSourceRetryMs: 0 });
    const toB = replicator(address, B);
    const publishing = toB.publish(events(6, 9, "b"));
    await until(() => toB.lag().lastError?.code === ErrorCodes.replicationHub.storeFailed);
    expect(store.events(B)).toHaveLength(5);

    store.damaged.delete(sourceKey(B)); // the operator put a good copy in place
    await publishing;
    expect(store.events(B).map((e) => e.sequenceNumber)).toEqual(range(1, 9));
    expect(hub.sourceStatuses().find((s) => s.nodeId === "node-b")).toMatchObject({ lastSequence: 9 });
    expect(hub.sourceStatuses().some((s) => s.failed)).toBe(false);
    expect(hub.metrics()).toContain('omnirelay_replication_hub_source_failed{node_id="node-b",shard="billing"} 0');
    expect(await readAll(client(address), B)).toEqual(range(1, 9));
    expect(lines.some((l) => l.level === "warn" && l.obj.source === "node-b@billing")).toBe(true);
  });

  it("does not create an empty log for a failed source that is no longer in the store", async () => {
    const store = new FaultyStore();
    await twoSourcesThenDamageB(store);
    const { hub, address } = await startHub(store, { failedSourceRetryMs: 0 });
    store.removed.add(sourceKey(B)); // the damaged file was moved aside, nothing put back
    store.damaged.delete(sourceKey(B));
    const opensBefore = store.opens.length;
    const raw = rawPublish(rawClient(address, rawCredentials()));
    raw.hello(B.nodeId, B.shard, 9);
    const end = await raw.ended;
    raw.call.cancel();
    expect(end.code).toBe(UNAVAILABLE);
    expect(end.metadata["omnirelay-error-code"]).toBe(ErrorCodes.replicationHub.storeFailed);
    expect(end.details).toContain("no longer in the store");
    expect(store.opens.length).toBe(opensBefore);
    expect(hub.sourceStatuses().find((s) => s.nodeId === "node-b")?.failed?.message).toContain(
      "no longer in the store",
    );
  });

  it("still refuses to start when the store cannot list its sources", async () => {
    const store = new FaultyStore();
    store.listFails = true;
    const hub = new GrpcReplicationHub({ store, auth: { allowUnauthenticated: true } });
    cleanup.push(() => hub.close());
    await expect(hub.start()).rejects.toThrow(/cannot read the data directory/);
    expect(hub.port).toBe(0);
  });
});
