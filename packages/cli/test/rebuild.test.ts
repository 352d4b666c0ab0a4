import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ResourceLeaseQueue } from "@omnirelay/core";
import { ObjectStorageResourceLeaseReplicator } from "@omnirelay/replicator-object-storage";
import { FileSystemResourceLeaseObjectStore } from "@omnirelay/replicator-object-storage/fs";
import { openDurableResourceLeaseQueue } from "@omnirelay/replicator-sqlite";
import { afterAll, describe, expect, it } from "vitest";
import { cli, json, repoRoot } from "./harness.js";

const dir = mkdtempSync(join(tmpdir(), "omnirelay-rebuild-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const item = (id: string) => ({ resourceType: "t", resourceId: id, partitionKey: "p", payloadEncoding: "json" });

/** A copy of the SQLite log written at schema version 4 (before the hash chain): 65 events, a snapshot at 48. */
function v4Copy(name: string): string {
  const fixture = join(repoRoot, "packages/replicator-sqlite/test/fixtures/v4-log.db");
  const path = join(dir, name);
  copyFileSync(fixture, path);
  copyFileSync(`${fixture}.hwm`, `${path}.hwm`);
  return path;
}

describe("omnirelay resourcelease rebuild", () => {
  it("reads a log older than the chain: sequence numbers checked, no hash; after an upgrade the chain starts at its last old event", async () => {
    const old = v4Copy("old.db");
    const before = await cli(["resourcelease", "rebuild", "--from", `sqlite:${old}`, "--verify"]);
    expect(before.code, before.stderr).toBe(0);
    expect(before.stdout).toContain("read 65 event(s) (1..65) from sqlite:");
    expect(before.stdout).toContain(
      "no event carries a hash (a log older than the chain): sequence numbers checked only",
    );
    const upgraded = await openDurableResourceLeaseQueue({ path: old, snapshotEveryEvents: 0 });
    await upgraded.queue.enqueue(item("after-upgrade"));
    const { lastEventHash: head, lastEventSequence: last } = upgraded.queue.snapshot();
    await upgraded.close();
    const after = json(await cli(["--json", "resourcelease", "rebuild", "--from", `sqlite:${old}`, "--verify"]));
    expect(after).toMatchObject({
      verified: true,
      firstSequence: 1,
      lastSequence: last,
      chainStartsAt: 65,
      lastHash: head,
    });
  });

  it("names the first missing sequence number of a stream with a hole (sequence_gap, exit 6)", async () => {
    const root = join(dir, "gap");
    const store = new FileSystemResourceLeaseObjectStore({ rootDirectory: root });
    const queue = new ResourceLeaseQueue({
      replicator: new ObjectStorageResourceLeaseReplicator(store),
    });
    for (let i = 0; i < 6; i++) await queue.enqueue(item(`g-${i}`));
    await queue.close();
    // One segment per publish (one event each): drop event 3's.
    const keys: string[] = [];
    for await (const { key } of store.list("resourcelease/")) keys.push(key);
    await rm(join(root, keys.filter((k) => k.endsWith(".jsonl"))[2]!));
    const run = await cli(["resourcelease", "rebuild", "--from", `file:${root}`, "--verify"]);
    expect(run.code, run.stderr).toBe(6);
    expect(run.stderr).toMatch(/^error: resourcelease\.replication\.sequence_gap: the stream diverges at event 3: /);
    // The JSON report says so too: not verified, beside the divergence.
    const json = await cli(["--json", "resourcelease", "rebuild", "--from", `file:${root}`, "--verify"]);
    expect(json.code, json.stderr).toBe(6);
    expect(JSON.parse(json.stdout)).toMatchObject({ verified: false, divergence: { sequenceNumber: 3 } });
  });

  it("verifies a compacted SQLite log from its snapshot's hash, and writes a drain file (a fresh log needs event 1)", async () => {
    const log = join(dir, "compacted.db");
    const durable = await openDurableResourceLeaseQueue({
      path: log,
      snapshotEveryEvents: 2,
      replicatorOptions: { retainEventsAfterSnapshot: 0 },
    });
    for (let i = 0; i < 5; i++) await durable.queue.enqueue(item(`c-${i}`));
    const head = durable.queue.snapshot().lastEventHash;
    await durable.close();
    const fresh = join(dir, "never.db");
    const refused = await cli(["resourcelease", "rebuild", "--from", `sqlite:${log}`, "--out", `sqlite:${fresh}`]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/starts after a snapshot at \d+; write --out drain:<file> instead/);
    expect(existsSync(fresh)).toBe(false);
    const drain = join(dir, "compacted-drain.json");
    const run = json(
      await cli([
        "--json",
        "resourcelease",
        "rebuild",
        "--from",
        `sqlite:${log}`,
        "--verify",
        "--out",
        `drain:${drain}`,
      ]),
    );
    expect(run.snapshotSequence).toBeGreaterThan(0);
    expect(run).toMatchObject({
      lastSequence: 5,
      lastHash: head,
      chainStartsAt: run.snapshotSequence,
      state: { pending: 5 },
    });
    const items = (JSON.parse(readFileSync(drain, "utf8")) as { items: { payload: { resourceId: string } }[] }).items;
    expect(items.map((i) => i.payload.resourceId)).toEqual(["c-0", "c-1", "c-2", "c-3", "c-4"]);
  });

  it("refuses an unknown source and an --out that exists (usage, exit 2)", async () => {
    const bad = await cli(["resourcelease", "rebuild", "--from", "ftp://x"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/expected sqlite:<path>, hub:<host:port>/);
    const log = join(dir, "small.db");
    const durable = await openDurableResourceLeaseQueue({ path: log });
    await durable.queue.enqueue(item("x"));
    await durable.close();
    const taken = join(dir, "taken.json");
    writeFileSync(taken, "{}");
    const exists = await cli(["resourcelease", "rebuild", "--from", `sqlite:${log}`, "--out", `drain:${taken}`]);
    expect(exists.code).toBe(2);
    expect(exists.stderr).toMatch(/the file exists/);
  });
});
