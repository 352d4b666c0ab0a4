import { randomUUID } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cli, json, startNode, type TestNode } from "./harness.js";

describe("drain --out on node A, restore --file on node B", () => {
  let a: TestNode;
  let b: TestNode;
  let dir: string;
  beforeEach(async () => {
    a = await startNode({ namespaces: ["resourcelease", "resourcelease.billing"], capacity: 5000 });
    b = await startNode({ namespaces: ["resourcelease", "resourcelease.billing"], capacity: 5000 });
    dir = mkdtempSync(join(tmpdir(), "omnirelay-drain-"));
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("moves every item with its sequence id, attempt, payload and last error; nothing is lost", async () => {
    const qa = a.queue("resourcelease.billing");
    const ids: string[] = [];
    for (let i = 0; i < 600; i++) {
      const id = randomUUID();
      ids.push(id);
      await qa.enqueue({
        resourceType: "table",
        resourceId: id,
        partitionKey: `p${i % 7}`,
        payloadEncoding: "json",
        body: Buffer.from(JSON.stringify({ i })),
        attributes: { i: String(i) },
        requestId: `req-${id}`,
      });
    }
    // One item failed once (attempt 2, lastError kept); one is leased and stays on A.
    const [first] = await qa.lease({ peerId: "w" });
    await qa.fail(first!.ownershipToken, { reason: "flaky", errorCode: "app.flaky" });
    const [held] = await qa.lease({ peerId: "w" });
    const before = qa.snapshot().pending;
    expect(before).toHaveLength(599);

    const out = join(dir, "drained.json");
    const g = ["--namespace", "resourcelease.billing"];
    const drain = await cli(["--url", a.url, ...g, "--json", "resourcelease", "drain", "--out", out]);
    expect(drain.code, drain.stderr).toBe(0);
    expect(json(drain)).toEqual({ drainedCount: 599, namespace: "resourcelease.billing", out });
    expect(qa.stats()).toMatchObject({ state: "draining", pendingCount: 0, activeLeaseCount: 1 });
    const file = JSON.parse(readFileSync(out, "utf8"));
    expect(file).toMatchObject({ version: 1, namespace: "resourcelease.billing", source: a.url });
    expect(file.items).toHaveLength(599);
    expect(typeof file.items[0].enqueuedAt).toBe("string");
    expect(typeof file.items[0].payload.body).toBe("string");

    // The file carries its namespace: restore without --namespace targets resourcelease.billing on B.
    const restore = await cli([
      "--url",
      b.url,
      "--json",
      "resourcelease",
      "restore",
      "--file",
      out,
      "--chunk-size",
      "100",
    ]);
    expect(restore.code, restore.stderr).toBe(0);
    expect(json(restore)).toEqual({
      restoredCount: 599,
      namespace: "resourcelease.billing",
      chunks: 6,
      renumbered: false,
    });
    expect(restore.stderr).toBe(""); // no progress bar off a TTY

    const after = b.queue("resourcelease.billing").snapshot().pending;
    const key = (x: (typeof before)[number]) =>
      JSON.stringify([
        x.sequenceId,
        x.attempt,
        x.payload.resourceId,
        x.payload.partitionKey,
        Buffer.from(x.payload.body ?? []).toString("base64"),
        x.payload.attributes,
        x.payload.requestId,
        x.lastError,
      ]);
    expect(after.map(key).sort()).toEqual(before.map(key).sort());
    expect(new Set(after.map((x) => x.payload.resourceId))).toEqual(
      new Set(ids.filter((id) => id !== held!.payload.resourceId)),
    );
    expect(after.find((x) => x.sequenceId === first!.sequenceId)).toMatchObject({
      attempt: 2,
      lastError: { message: "flaky", code: "app.flaky" },
    });
    expect(b.queue().stats().pendingCount).toBe(0);
    // The held lease can still finish on A.
    await qa.complete(held!.ownershipToken);
  });

  it("drains a queue larger than one page into one file, and restores it whole", async () => {
    const qa = a.queue();
    const body = Buffer.alloc(1500, 9); // 2,500 items: three pages by count, and over 2 MiB of payload
    for (let i = 0; i < 5; i++) {
      await qa.enqueueMany(
        Array.from({ length: 500 }, (_, j) => ({
          resourceType: "t",
          resourceId: `big-${i * 500 + j}`,
          partitionKey: "p",
          payloadEncoding: "bin",
          body,
        })),
      );
    }
    const out = join(dir, "paged.json");
    const drain = await cli(["--url", a.url, "--json", "resourcelease", "drain", "--out", out]);
    expect(drain.code, drain.stderr).toBe(0);
    expect(json(drain)).toMatchObject({ drainedCount: 2500 });
    expect(qa.stats()).toMatchObject({ pendingCount: 0, state: "draining" });
    const restore = await cli(["--url", b.url, "--json", "resourcelease", "restore", "--file", out]);
    expect(restore.code, restore.stderr).toBe(0);
    const after = b.queue().snapshot().pending;
    expect(after.map((p) => p.sequenceId)).toEqual(Array.from({ length: 2500 }, (_, i) => i + 1));
    expect(after.every((p) => Buffer.from(p.payload.body ?? []).equals(body))).toBe(true);
  });

  it("restore --renumber moves items onto a node that has items of its own (colliding ids)", async () => {
    const item = (id: string) => ({ resourceType: "t", resourceId: id, partitionKey: "p", payloadEncoding: "json" });
    await a.queue().enqueueMany([item("a1"), item("a2")]);
    await b.queue().enqueueMany([item("b1"), item("b2")]);
    const out = join(dir, "move.json");
    expect((await cli(["--url", a.url, "resourcelease", "drain", "--out", out])).code).toBe(0);
    const plain = await cli(["--url", b.url, "resourcelease", "restore", "--file", out]);
    expect(plain.code).toBe(3);
    expect(plain.stderr).toMatch(/^error: resourcelease\.restore\.duplicate_item: .*renumber/);
    const moved = await cli(["--url", b.url, "--json", "resourcelease", "restore", "--file", out, "--renumber"]);
    expect(moved.code, moved.stderr).toBe(0);
    expect(json(moved)).toMatchObject({ restoredCount: 2, renumbered: true });
    const pending = b.queue().snapshot().pending;
    expect(pending.map((p) => [p.sequenceId, p.payload.resourceId])).toEqual([
      [1, "b1"],
      [2, "b2"],
      [3, "a1"],
      [4, "a2"],
    ]);
  });

  it("restore on the drained node itself ends the drain, even with an empty file", async () => {
    const out = join(dir, "empty.json");
    expect((await cli(["--url", a.url, "resourcelease", "drain", "--out", out])).stdout).toMatch(
      /^drained 0 item\(s\) from resourcelease into /,
    );
    expect(a.queue().stats().state).toBe("draining");
    const refused = await cli([
      "--url",
      a.url,
      "resourcelease",
      "enqueue",
      "--resource-type",
      "t",
      "--resource-id",
      "i",
      "--partition-key",
      "p",
    ]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(/^error: resourcelease\.draining: /);
    const restore = await cli(["--url", a.url, "resourcelease", "restore", "--file", out]);
    expect(restore.stdout).toMatch(/^restored 0 item\(s\) into resourcelease \(1 call\(s\)\)/);
    expect(a.queue().stats().state).toBe("running");
  });

  it("drain without --out prints the envelope on stdout; --namespace overrides the file's namespace", async () => {
    await a.queue().enqueue({ resourceType: "t", resourceId: "one", partitionKey: "p", payloadEncoding: "json" });
    const drain = await cli(["--url", a.url, "--json", "resourcelease", "drain"]);
    const doc = json(drain);
    expect(doc.items.map((i: any) => i.payload.resourceId)).toEqual(["one"]);
    const file = join(dir, "stdout.json");
    writeFileSync(file, drain.stdout);
    const r = await cli([
      "--url",
      b.url,
      "--namespace",
      "resourcelease.billing",
      "resourcelease",
      "restore",
      "--file",
      file,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(b.queue("resourcelease.billing").stats().pendingCount).toBe(1);
  });

  it("a malformed or missing file is a usage error (exit 2) naming the problem, and nothing is sent", async () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ version: 1, items: [{ sequenceId: 1, payload: { resourceType: "t" } }] }));
    const r1 = await cli(["--url", b.url, "resourcelease", "restore", "--file", bad]);
    expect(r1.code).toBe(2);
    expect(r1.stderr).toMatch(
      /^error: .*resourcelease\.payload\.resource_id_required.*items\[0\]\.payload\.resourceId/,
    );
    const r2 = await cli(["--url", b.url, "resourcelease", "restore", "--file", join(dir, "nope.json")]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/ENOENT/);
    writeFileSync(bad, "{not json");
    expect((await cli(["--url", b.url, "resourcelease", "restore", "--file", bad])).code).toBe(2);
    expect(b.queue().stats().lastEventSequence).toBe(0);
  });

  it("a restore refused by the server (duplicate item) is exit 3 and says how to resume", async () => {
    for (const id of ["r1", "r2", "r3"]) {
      await a.queue().enqueue({ resourceType: "t", resourceId: id, partitionKey: "p", payloadEncoding: "json" });
    }
    const out = join(dir, "dup.json");
    await cli(["--url", a.url, "resourcelease", "drain", "--out", out]);
    // B already holds sequence id 3.
    const file = JSON.parse(readFileSync(out, "utf8"));
    await cli(["--url", b.url, "resourcelease", "restore", "--file", out, "--skip", "2"]);
    expect(
      b
        .queue()
        .snapshot()
        .pending.map((x) => x.sequenceId),
    ).toEqual([3]);
    expect(file.items).toHaveLength(3);
    const r = await cli(["--url", b.url, "resourcelease", "restore", "--file", out, "--chunk-size", "2"]);
    expect(r.code).toBe(3);
    expect(r.stderr).toMatch(/^error: resourcelease\.restore\.duplicate_item: .*2 of 3 items were restored.*--skip 2/);
    expect(
      b
        .queue()
        .snapshot()
        .pending.map((x) => x.sequenceId)
        .sort(),
    ).toEqual([1, 2, 3]);
  });
});
