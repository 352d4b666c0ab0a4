import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cli, json, startNode, type TestNode } from "./harness.js";

describe("omnirelay resourcelease cancel and schedule set|rm|ls", () => {
  let node: TestNode;
  let g: string[];
  beforeEach(async () => {
    node = await startNode({ grpc: true });
    g = ["--url", node.url];
  });
  afterEach(async () => {
    await node.close();
  });

  it("cancel by --sequence-id and --request-id; unknown items exit 3 with the code; bad flags exit 2", async () => {
    await node.queue().enqueue({ resourceType: "t", resourceId: "a", partitionKey: "p", payloadEncoding: "json" });
    await node.queue().enqueue({
      resourceType: "t",
      resourceId: "b",
      partitionKey: "p",
      payloadEncoding: "json",
      requestId: "order-1",
    });
    const one = await cli(["--json", ...g, "resourcelease", "cancel", "--sequence-id", "1"]);
    expect([one.code, json(one)], one.stderr).toEqual([0, { sequenceId: 1, state: "pending" }]);
    const two = await cli([...g, "resourcelease", "cancel", "--request-id", "order-1"]);
    expect(two.stdout).toMatch(/^cancelled sequenceId 2 \(was pending\)/);
    expect(node.queue().stats().pendingCount).toBe(0);
    const gone = await cli([...g, "resourcelease", "cancel", "--sequence-id", "1"]);
    expect(gone.code).toBe(3);
    expect(gone.stderr).toMatch(/resourcelease\.item\.not_found/);
    const both = await cli([...g, "resourcelease", "cancel", "--sequence-id", "1", "--request-id", "x"]);
    expect(both.code).toBe(2);
  });

  it("schedule set, ls and rm, over HTTP and over gRPC; a bad cron exits 3 naming its code", async () => {
    const set = await cli([
      "--json",
      ...g,
      "resourcelease",
      "schedule",
      "set",
      "--id",
      "nightly",
      "--cron",
      "30 2 * * *",
      "--timezone",
      "Europe/Berlin",
      "--backfill",
      "latest",
      "--resource-type",
      "report",
      "--resource-id",
      "daily",
      "--partition-key",
      "reports",
      "--body",
      "{}",
      "--attribute",
      "team=ops",
    ]);
    expect(set.code, set.stderr).toBe(0);
    expect(json(set).schedule).toMatchObject({ id: "nightly", timezone: "Europe/Berlin", backfill: "latest" });
    const [stored] = node.queue().schedules.list();
    expect(stored?.payload).toMatchObject({ resourceType: "report", attributes: { team: "ops" } });

    const grpc = ["--transport", "grpc", "--url", node.grpcAddress!];
    const ls = await cli([...grpc, "resourcelease", "schedule", "ls"]);
    expect(ls.code, ls.stderr).toBe(0);
    expect(ls.stdout).toMatch(/nightly\s+30 2 \* \* \*\s+Europe\/Berlin\s+latest\s+-\s+\d{4}-/);
    const rm = await cli([...grpc, "resourcelease", "schedule", "rm", "nightly"]);
    expect([rm.code, rm.stdout.trim()]).toEqual([0, "schedule nightly removed"]);
    expect(json(await cli(["--json", ...g, "resourcelease", "schedule", "ls"]))).toEqual({ schedules: [] });

    const bad = await cli([
      ...g,
      "resourcelease",
      "schedule",
      "set",
      "--id",
      "x",
      "--cron",
      "* * * * * *",
      "--resource-type",
      "t",
      "--resource-id",
      "r",
      "--partition-key",
      "p",
    ]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toMatch(/resourcelease\.schedule\.too_frequent/);
  });
});
