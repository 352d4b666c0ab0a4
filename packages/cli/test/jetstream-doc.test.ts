import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { JetStreamShardAdmin, placeShards } from "@omnirelay/replicator-jetstream";
import { afterAll, describe, expect, it } from "vitest";
import { cliDir, repoRoot } from "./harness.js";
import { cliCommand, runShell } from "./processes.js";

// docs/guides/jetstream.md: its node program and every bash block run, in order, against the machine's NATS — with
// buckets and a stream of this run's own (the environment variables the program and the CLI read).

const guide = readFileSync(join(repoRoot, "docs/guides/jetstream.md"), "utf8");
const program = /```js node\.mjs\n([\s\S]*?)```/.exec(guide)?.[1];
const blocks = [...guide.matchAll(/```bash\n([\s\S]*?)```/g)].map((m) => m[1]!);
const NATS_URL = process.env.OMNIRELAY_NATS_URL ?? "nats://127.0.0.1:4222";
const id = randomUUID().replaceAll("-", "").slice(0, 12);
const names = {
  OMNIRELAY_OWNERS_BUCKET: `OMNI_DOC_OWN_${id}`,
  OMNIRELAY_MEMBERS_BUCKET: `OMNI_DOC_MEM_${id}`,
  OMNIRELAY_PINS_BUCKET: `OMNI_DOC_PIN_${id}`,
  OMNIRELAY_SNAPSHOT_BUCKET: `OMNI_DOC_SNAP_${id}`,
  OMNIRELAY_STREAM: `OMNI_DOC_LOG_${id}`,
};
const dir = mkdtempSync(join(tmpdir(), "omnirelay-jetstream-doc-"));

afterAll(async () => {
  // Whatever the script left running (it stops its nodes itself when it gets that far).
  await runShell(`for p in $(cat '${dir}/pids' 2>/dev/null); do kill "$p" 2>/dev/null || true; done`);
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  for (const [key, name] of Object.entries(names)) {
    await jsm.streams.delete(key === "OMNIRELAY_STREAM" ? name : `KV_${name}`).catch(() => undefined);
  }
  await nc.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("docs/guides/jetstream.md", () => {
  it("has the node program and the start, shards and stop commands", () => {
    expect(program).toBeDefined();
    expect(blocks).toHaveLength(3);
    expect(blocks[1]).toMatch(/omnirelay shards list/);
    expect(blocks[1]).toMatch(/omnirelay shards move orders-3 node-b/);
  });

  it("three nodes spread the shards; shards list shows them; move hands orders-3 to node-b; SIGTERM stops them", async () => {
    writeFileSync(join(dir, "node.mjs"), program!);
    symlinkSync(join(cliDir, "node_modules"), join(dir, "node_modules")); // so node.mjs finds the packages
    writeFileSync(join(dir, "omnirelay"), `#!/usr/bin/env bash\nexec ${cliCommand} "$@"\n`, { mode: 0o755 });
    const shards = "orders-0,orders-1,orders-2,orders-3,orders-4,orders-5".split(",");
    // Between starting the nodes and using them, the test waits until every shard is held (test glue, not in the doc).
    const settled = `until [ "$(omnirelay shards list --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>{const d=JSON.parse(s);console.log(d.members.length===3&&d.shards.filter(x=>x.owner&&x.owner===x.placedOn).length===${shards.length})})')" = true ]; do sleep 0.1; done`;
    const [start, operate, stop] = blocks.map((b) => b.replace(/^export NATS_URL=.*$/m, ""));
    const script = [
      "set -euo pipefail",
      `cd '${dir}'`,
      start,
      `jobs -p > '${dir}/pids'`,
      settled,
      operate,
      stop,
      "wait",
    ].join("\n");
    const run = await runShell(script, {
      ...names,
      NATS_URL,
      PATH: `${dir}:${process.env.PATH}`,
    });
    expect(run.code, `${run.stdout}\n${run.stderr}`).toBe(0);
    const expected = placeShards({ shards, nodes: ["node-a", "node-b", "node-c"] });
    // The first list: every shard on the node placement puts it on.
    for (const shard of shards) {
      const node = expected.get(shard)!;
      expect(run.stdout).toMatch(
        new RegExp(`^${shard}\\s+${node}\\s+http://${node}:7420\\s+\\d+\\s+yes\\s+-\\s+${node}$`, "m"),
      );
    }
    expect(run.stdout).toMatch(/^members: node-a http:\/\/node-a:7420, node-b http:\/\/node-b:7420, node-c/m);
    // The move, and the JSON list after it: orders-3 on node-b, pinned there.
    expect(run.stdout).toMatch(/^orders-3 moved to node-b \(epoch \d+\)$/m);
    const doc = JSON.parse(run.stdout.split("\n").find((l) => l.startsWith("{") && l.includes('"members"'))!);
    expect(doc.shards.find((s: { shard: string }) => s.shard === "orders-3")).toMatchObject({
      owner: "node-b",
      pinnedTo: "node-b",
      ownerLive: true,
    });
    expect(run.stdout).toMatch(/^unpinned orders-3$/m);
    // node-b's own log says it took orders-3; every node stopped on SIGTERM and released what it held.
    const logB = readFileSync(join(dir, "node-b.log"), "utf8");
    expect(logB).toMatch(/^node-b acquired orders-3 \d+$/m);
    for (const node of ["node-a", "node-b", "node-c"]) {
      expect(readFileSync(join(dir, `${node}.log`), "utf8")).toMatch(new RegExp(`^${node} released \\S+ \\d+$`, "m"));
    }
    // Stopped cleanly: no member left, every shard released (no owner) for the next node to take at once.
    const admin = await JetStreamShardAdmin.open({
      servers: NATS_URL,
      ownersBucket: names.OMNIRELAY_OWNERS_BUCKET,
      membersBucket: names.OMNIRELAY_MEMBERS_BUCKET,
      pinsBucket: names.OMNIRELAY_PINS_BUCKET,
    });
    const after = await admin.list();
    await admin.close();
    expect(after.members).toEqual([]);
    expect(after.shards.map((s) => [s.shard, s.owner])).toEqual(shards.map((s) => [s, ""]));
  });
});
