import { spawnSync } from "node:child_process";
import { randomUUID } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { jetstreamManager } from "@nats-io/jetstream";
import { connect } from "@nats-io/transport-node";
import { JetStreamShardOwnership, JetStreamShardPlacement, placeShards } from "@omnirelay/replicator-jetstream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, cliDir, json, mainJs } from "./harness.js";

const NATS_URL = process.env.OMNIRELAY_NATS_URL ?? "nats://127.0.0.1:4222";
const id = randomUUID().replaceAll("-", "").slice(0, 12);
const buckets = {
  ownersBucket: `OMNI_CLI_OWN_${id}`,
  membersBucket: `OMNI_CLI_MEM_${id}`,
  pinsBucket: `OMNI_CLI_PIN_${id}`,
};
const flags = [
  "--nats",
  NATS_URL,
  "--owners-bucket",
  buckets.ownersBucket,
  "--members-bucket",
  buckets.membersBucket,
  "--pins-bucket",
  buckets.pinsBucket,
];
const shards = ["cli-0", "cli-1", "cli-2", "cli-3", "cli-4", "cli-5"];
const nodes = ["cli-a", "cli-b"];
const placements: JetStreamShardPlacement[] = [];

beforeAll(async () => {
  for (const nodeId of nodes) {
    const ownership = await JetStreamShardOwnership.open({
      servers: NATS_URL,
      bucket: buckets.ownersBucket,
      nodeId,
      url: `http://${nodeId}.test:7420`,
      ownershipTtlMs: 2000,
    });
    placements.push(
      await JetStreamShardPlacement.open({
        ownership,
        shards,
        servers: NATS_URL,
        membersBucket: buckets.membersBucket,
        pinsBucket: buckets.pinsBucket,
      }),
    );
  }
  const expected = placeShards({ shards, nodes });
  const deadline = Date.now() + 15_000;
  while (
    !placements.every((p) => [...p.owned().keys()].length === shards.filter((s) => expected.get(s) === p.nodeId).length)
  ) {
    if (Date.now() > deadline) throw new Error("placement did not settle");
    await new Promise((r) => setTimeout(r, 20));
  }
});

afterAll(async () => {
  for (const p of placements) await p.close();
  const nc = await connect({ servers: NATS_URL });
  const jsm = await jetstreamManager(nc);
  for (const b of Object.values(buckets)) await jsm.streams.delete(`KV_${b}`).catch(() => undefined);
  await nc.close();
});

describe("omnirelay shards", () => {
  it("list shows every shard's owner node, URL, epoch and pin, as the buckets hold them", async () => {
    const run = await cli(["shards", "list", ...flags]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^SHARD\s+OWNER\s+URL\s+EPOCH\s+LIVE\s+PINNED\s+PLACED$/m);
    const expected = placeShards({ shards, nodes });
    for (const shard of shards) {
      const owner = expected.get(shard)!;
      expect(run.stdout).toMatch(
        new RegExp(`^${shard}\\s+${owner}\\s+http://${owner}\\.test:7420\\s+\\d+\\s+yes\\s+-\\s+${owner}$`, "m"),
      );
    }
    expect(run.stdout).toContain("members: cli-a http://cli-a.test:7420, cli-b http://cli-b.test:7420");
    const doc = json(await cli(["--json", "shards", "list", ...flags]));
    expect(doc.shards.map((s: { shard: string }) => s.shard)).toEqual(shards);
    for (const view of doc.shards) {
      const lease = placements
        .find((p) => p.nodeId === view.owner)!
        .owned()
        .get(view.shard)!.lease;
      expect(view).toMatchObject({ epoch: lease.epoch, ownerLive: true });
    }
  });

  it("move pins a shard to a node, which takes it over (--wait); unpin lets it go back; a non-member is refused", async () => {
    const [a, b] = placements as [JetStreamShardPlacement, JetStreamShardPlacement];
    const shard = [...a.owned().keys()][0]!;
    const epoch = a.owned().get(shard)!.lease.epoch;
    const moved = await cli(["shards", "move", shard, "cli-b", "--wait", ...flags]);
    expect(moved.code, moved.stderr).toBe(0);
    expect(moved.stdout.trim()).toBe(`${shard} moved to cli-b (epoch ${epoch + 1})`);
    expect(b.owned().has(shard) || (await waitFor(() => b.owned().has(shard)))).toBe(true);
    expect(a.owned().has(shard)).toBe(false);
    const listed = await cli(["shards", "list", ...flags]);
    expect(listed.stdout).toMatch(
      new RegExp(`^${shard}\\s+cli-b\\s+\\S+\\s+${epoch + 1}\\s+yes\\s+cli-b\\s+cli-b$`, "m"),
    );

    const refused = await cli(["shards", "move", shard, "cli-ghost", ...flags]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/^error: resourcelease\.jetstream\.not_member: Node cli-ghost is not a live member/);

    const unpinned = await cli(["shards", "unpin", shard, ...flags]);
    expect(unpinned.stdout.trim()).toBe(`unpinned ${shard}`);
    expect(await waitFor(() => a.owned().has(shard))).toBe(true);
    expect((await cli(["shards", "unpin", shard, ...flags])).stdout.trim()).toBe(`${shard} was not pinned`);
  });

  it("unreachable NATS exits 4 with the code", async () => {
    const run = await cli(["shards", "list", "--nats", "nats://127.0.0.1:1"]);
    expect(run.code).toBe(4);
    expect(run.stderr).toMatch(/^error: resourcelease\.jetstream\.unavailable: /);
  });

  it("without @omnirelay/replicator-jetstream installed: a coded error saying what to npm install (exit 2)", () => {
    // The built CLI beside only its own dependencies and core, as npm installs it without the optional peer.
    const dir = mkdtempSync(join(tmpdir(), "omnirelay-cli-no-js-"));
    try {
      mkdirSync(join(dir, "dist"));
      mkdirSync(join(dir, "node_modules", "@omnirelay"), { recursive: true });
      copyFileSync(mainJs, join(dir, "dist", "main.js"));
      for (const dep of ["commander", "cli-progress", "@omnirelay/core"]) {
        symlinkSync(realpathSync(join(cliDir, "node_modules", dep)), join(dir, "node_modules", dep));
      }
      const run = spawnSync(process.execPath, [join(dir, "dist", "main.js"), "shards", "list"], { encoding: "utf8" });
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/^error: omnirelay\.cli\.jetstream_not_installed: /);
      expect(run.stderr).toContain("npm install @omnirelay/replicator-jetstream");
      // The rest of the CLI works without it.
      expect(spawnSync(process.execPath, [join(dir, "dist", "main.js"), "--help"], { encoding: "utf8" }).status).toBe(
        0,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 15_000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}
