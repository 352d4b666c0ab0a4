import { randomUUID } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it, onTestFinished } from "vitest";
import { cli, json, startNode, type TestNode } from "./harness.js";

describe("omnirelay resourcelease: queue verbs over HTTP", () => {
  let node: TestNode;
  let g: string[];
  beforeEach(async () => {
    node = await startNode();
    g = ["--url", node.url, "--caller", "cli-worker"];
  });
  afterEach(async () => {
    await node.close();
  });

  const enqueueArgs = (id: string, extra: string[] = []) => [
    ...g,
    "resourcelease",
    "enqueue",
    "--resource-type",
    "table",
    "--resource-id",
    id,
    "--partition-key",
    "catalog-a",
    ...extra,
  ];

  it("enqueue sends body, attributes and requestId; a retried requestId is a duplicate", async () => {
    const id = randomUUID();
    const first = await cli([
      "--json",
      ...enqueueArgs(id, ["--body", '{"op":"vacuum"}', "--attribute", "owner=ops", "--attribute", "tier=gold"]),
      "--request-id",
      `req-${id}`,
    ]);
    expect(first.code, first.stderr).toBe(0);
    expect(json(first)).toEqual({ sequenceId: 1, stats: { pendingCount: 1, activeLeaseCount: 0 } });
    const again = await cli(["--json", ...enqueueArgs(id, ["--request-id", `req-${id}`])]);
    expect(json(again)).toMatchObject({ sequenceId: 1, duplicate: true });
    const [item] = node.queue().snapshot().pending;
    expect(item?.payload.resourceId).toBe(id);
    expect(Buffer.from(item!.payload.body!).toString("utf8")).toBe('{"op":"vacuum"}');
    expect(item?.payload.attributes).toEqual({ owner: "ops", tier: "gold" });
    expect(item?.payload.payloadEncoding).toBe("json");
  });

  it("enqueue --delay-ms, --not-before and --priority schedule the item; bad values are refused", async () => {
    const before = Date.now();
    const delayed = await cli(enqueueArgs("later", ["--delay-ms", "60000", "--priority", "-7"]));
    expect(delayed.code, delayed.stderr).toBe(0);
    const at = "2100-01-01T00:00:00.000Z";
    expect((await cli(enqueueArgs("dated", ["--not-before", at, "--priority", "2147483647"]))).code).toBe(0);
    const { delayed: waiting } = node.queue().snapshot();
    const later = waiting.find((d) => d.payload.resourceId === "later")!.payload;
    expect(later.priority).toBe(-7);
    expect(later.notBefore).toBeGreaterThanOrEqual(before + 60_000);
    expect(later.notBefore).toBeLessThanOrEqual(Date.now() + 60_000);
    expect(waiting.find((d) => d.payload.resourceId === "dated")!.payload).toMatchObject({
      notBefore: Date.parse(at),
      priority: 2 ** 31 - 1,
    });
    const tooHigh = await cli(enqueueArgs("x", ["--priority", "2147483648"]));
    expect(tooHigh.code).toBe(3);
    expect(tooHigh.stderr).toContain("resourcelease.payload.invalid");
    expect((await cli(enqueueArgs("x", ["--not-before", "tomorrow"]))).code).toBe(2);
    expect((await cli(enqueueArgs("x", ["--not-before", at, "--delay-ms", "5"]))).code).toBe(2);
    expect((await cli(enqueueArgs("x", ["--priority", "1.5"]))).code).toBe(2);
    expect(node.queue().stats()).toMatchObject({ pendingCount: 2, delayedCount: 2 });
  });

  it("enqueue --body-file sends the file's bytes; human output names the sequence id", async () => {
    const dir = mkdtempSync(join(tmpdir(), "omnirelay-cli-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "body.bin");
    writeFileSync(file, Buffer.from([0, 1, 2, 255]));
    const run = await cli(enqueueArgs(randomUUID(), ["--body-file", file, "--encoding", "application/octet-stream"]));
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^enqueued sequenceId 1 \(pending 1, active 0\)/);
    const [item] = node.queue().snapshot().pending;
    expect([...item!.payload.body!]).toEqual([0, 1, 2, 255]);
  });

  it("lease prints grants and tokens; complete takes --token-json; a spent token is a remote error (exit 3)", async () => {
    await cli(enqueueArgs("a"));
    const lease = await cli(["--json", ...g, "resourcelease", "lease", "--wait-ms", "0"]);
    expect(lease.code, lease.stderr).toBe(0);
    const doc = json(lease);
    expect(doc.items).toHaveLength(1);
    const grant = doc.items[0];
    expect(grant).toMatchObject({
      sequenceId: 1,
      attempt: 1,
      ownerPeerId: "cli-worker",
      payload: { resourceType: "table", resourceId: "a", partitionKey: "catalog-a", payloadEncoding: "json" },
      ownershipToken: { sequenceId: 1, attempt: 1, fencingToken: 1 },
    });
    expect(Date.parse(grant.leaseExpiresAt)).toBeGreaterThan(Date.now());
    expect(Date.parse(grant.enqueuedAt)).toBeLessThanOrEqual(Date.now());
    const token = JSON.stringify(grant.ownershipToken);
    const done = await cli([...g, "--json", "resourcelease", "complete", "--token-json", token]);
    expect(done.code, done.stderr).toBe(0);
    expect(json(done)).toEqual({ success: true });
    expect(node.queue().stats().activeLeaseCount).toBe(0);

    const again = await cli([...g, "resourcelease", "complete", "--token-json", token]);
    expect(again.code).toBe(3);
    expect(again.stdout).toBe("");
    expect(again.stderr.trim().split("\n")).toHaveLength(1);
    expect(again.stderr).toMatch(/^error: resourcelease\.lease\.fenced: /);
    expect(again.stderr).not.toMatch(/\bat .*\.js:\d+/);
  });

  it("the human lease output prints a --token-json line that complete accepts as is", async () => {
    await cli(enqueueArgs("b"));
    const lease = await cli([...g, "resourcelease", "lease"]);
    expect(lease.code, lease.stderr).toBe(0);
    expect(lease.stdout).toMatch(/SEQ\s+ATTEMPT\s+RESOURCE\s+PEER\s+EXPIRES/);
    expect(lease.stdout).toContain("table/b");
    const m = /--token-json '([^']+)'/.exec(lease.stdout);
    expect(m).not.toBeNull();
    const done = await cli([...g, "resourcelease", "complete", "--token-json", m![1]!]);
    expect(done.code, done.stderr).toBe(0);
    expect(done.stdout).toMatch(/^completed 1/);
  });

  it("lease --max-items leases a batch; with nothing pending it exits 5 and prints an empty list", async () => {
    for (const id of ["x", "y", "z"]) await cli(enqueueArgs(id));
    const batch = json(await cli(["--json", ...g, "resourcelease", "lease", "--max-items", "2"]));
    expect(batch.items.map((i: any) => i.payload.resourceId)).toEqual(["x", "y"]);
    await cli([...g, "resourcelease", "lease"]);
    const empty = await cli(["--json", ...g, "resourcelease", "lease", "--wait-ms", "50"]);
    expect(empty.code).toBe(5);
    expect(json(empty)).toEqual({ items: [] });
  });

  it("heartbeat takes the four token flags and answers the new expiry", async () => {
    await cli(enqueueArgs("h"));
    const t = json(await cli(["--json", ...g, "resourcelease", "lease"])).items[0].ownershipToken;
    const flags = ["--sequence-id", t.sequenceId, "--attempt", t.attempt, "--lease-id", t.leaseId];
    const hb = await cli(["--json", ...g, "resourcelease", "heartbeat", ...flags, "--fencing-token", t.fencingToken]);
    expect(hb.code, hb.stderr).toBe(0);
    const doc = json(hb);
    expect(doc.success).toBe(true);
    expect(doc.remainingMs).toBeGreaterThan(25_000);
    expect(Date.parse(doc.leaseExpiresAt)).toBeGreaterThan(Date.now() + 25_000);
    const missing = await cli([...g, "resourcelease", "heartbeat", ...flags]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/--fencing-token/);
  });

  it("fail requeues by default, dead-letters with --no-requeue; deadletters lists it and redrive brings it back", async () => {
    await cli(enqueueArgs("f"));
    const t1 = JSON.stringify(json(await cli(["--json", ...g, "resourcelease", "lease"])).items[0].ownershipToken);
    const requeued = await cli(["--json", ...g, "resourcelease", "fail", "--token-json", t1, "--reason", "flaky"]);
    expect(json(requeued)).toEqual({ success: true, outcome: "requeued" });
    const t2 = JSON.stringify(json(await cli(["--json", ...g, "resourcelease", "lease"])).items[0].ownershipToken);
    const dead = await cli([
      ...g,
      "--json",
      "resourcelease",
      "fail",
      "--token-json",
      t2,
      "--no-requeue",
      "--reason",
      "poison",
      "--error-code",
      "app.poison",
    ]);
    expect(json(dead)).toEqual({ success: true, outcome: "dead_lettered" });

    const list = json(await cli(["--json", ...g, "resourcelease", "deadletters", "--limit", "10"]));
    expect(list.items).toHaveLength(1);
    expect(list.items[0]).toMatchObject({
      sequenceId: 1,
      reason: "failed",
      payload: { resourceId: "f" },
      lastError: { message: "poison", code: "app.poison" },
    });
    expect(Date.parse(list.items[0].deadLetteredAt)).toBeLessThanOrEqual(Date.now());
    const human = await cli([...g, "resourcelease", "deadletters"]);
    expect(human.stdout).toMatch(/1\s+2\s+table\/f\s+failed\s+\S+\s+app\.poison: poison/);

    const usage = await cli([...g, "resourcelease", "redrive"]);
    expect(usage.code).toBe(2);
    const redrive = await cli(["--json", ...g, "resourcelease", "redrive", "--sequence-id", "1"]);
    expect(json(redrive)).toEqual({ redrivenCount: 1 });
    expect(node.queue().stats()).toMatchObject({ pendingCount: 1, deadLetterCount: 0 });
  });

  it("redrive --all moves every dead-lettered item", async () => {
    for (const id of ["d1", "d2"]) {
      await cli(enqueueArgs(id));
      const t = JSON.stringify(json(await cli(["--json", ...g, "resourcelease", "lease"])).items[0].ownershipToken);
      await cli([...g, "resourcelease", "fail", "--token-json", t, "--no-requeue"]);
    }
    expect(node.queue().stats().deadLetterCount).toBe(2);
    const all = await cli([...g, "resourcelease", "redrive", "--all"]);
    expect(all.stdout).toMatch(/^redrove 2 item/);
    expect(node.queue().stats()).toMatchObject({ pendingCount: 2, deadLetterCount: 0 });
  });

  it("stats prints the queue counters (JSON and table)", async () => {
    await cli(enqueueArgs("s"));
    const doc = json(await cli(["--json", ...g, "resourcelease", "stats"]));
    expect(doc).toMatchObject({
      namespace: "resourcelease",
      stats: { pendingCount: 1, activeLeaseCount: 0, deadLetterCount: 0, state: "running", capacity: 512 },
    });
    const human = await cli([...g, "resourcelease", "stats"]);
    expect(human.stdout).toMatch(/NAMESPACE\s+STATE\s+PENDING/);
    expect(human.stdout).toMatch(/resourcelease\s+running\s+1\s+0\s+0\s+0/);
  });
});

describe("omnirelay resourcelease: namespaces and auth", () => {
  it("--namespace targets a shard and --token / OMNIRELAY_TOKEN travel as Authorization: Bearer", async () => {
    const seen: Array<string | undefined> = [];
    const node = await startNode({
      namespaces: ["resourcelease", "resourcelease.billing"],
      middleware: [
        {
          handle(request, next) {
            seen.push(request.meta.headers.authorization);
            return next(request);
          },
        },
      ],
    });
    try {
      const args = ["resourcelease", "enqueue", "--resource-type", "t", "--resource-id", "i", "--partition-key", "p"];
      const a = await cli(["--url", node.url, "--namespace", "resourcelease.billing", "--token", "jwt-1", ...args]);
      expect(a.code, a.stderr).toBe(0);
      const b = await cli(["--namespace", "resourcelease.billing", ...args], {
        env: { OMNIRELAY_URL: node.url, OMNIRELAY_TOKEN: "jwt-2" },
      });
      expect(b.code, b.stderr).toBe(0);
      expect(node.queue("resourcelease.billing").stats().pendingCount).toBe(2);
      expect(node.queue().stats().pendingCount).toBe(0);
      expect(seen).toEqual(["Bearer jwt-1", "Bearer jwt-2"]);
    } finally {
      await node.close();
    }
  });
});
