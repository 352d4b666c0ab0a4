import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cli, json, startNode, type TestNode } from "./harness.js";

describe("omnirelay resourcelease history", () => {
  let node: TestNode;
  beforeEach(async () => {
    node = await startNode({ grpc: true });
  });
  afterEach(async () => {
    await node.close();
  });

  it("prints an item's story with the stale worker's refusal, over HTTP (JSON) and gRPC (table)", async () => {
    const q = node.queue();
    const payload = { resourceType: "t", resourceId: "a", partitionKey: "p", payloadEncoding: "json" };
    await q.enqueue({ ...payload, requestId: "order-1" }, { peerId: "producer" });
    const [first] = await q.lease({ peerId: "w1" });
    await q.fail(first!.ownershipToken, { peerId: "w1", reason: "flaky" }); // requeued at once
    const [second] = await q.lease({ peerId: "w2" });
    await expect(q.heartbeat(first!.ownershipToken, { peerId: "w1" })).rejects.toThrow(/no longer held/);
    await q.complete(second!.ownershipToken, { peerId: "w2" });

    const r = await cli(["--json", "--url", node.url, "resourcelease", "history", String(first!.sequenceId)]);
    expect(r.code, r.stderr).toBe(0);
    const doc = json(r) as { sequenceId: number; requestId: string; entries: Array<Record<string, any>> };
    expect(doc).toMatchObject({ sequenceId: first!.sequenceId, requestId: "order-1", droppedEntries: 0 });
    expect(doc.entries.map((e) => e.eventType)).toEqual([
      "Enqueue",
      "LeaseGranted",
      "Failed",
      "Requeued",
      "LeaseGranted",
      "LeaseRefused",
      "Completed",
    ]);
    expect(doc.entries[5]).toMatchObject({
      peerId: "w1",
      fencingToken: first!.ownershipToken.fencingToken,
      metadata: { "refused.verb": "heartbeat", "refused.code": "resourcelease.lease.fenced" },
    });
    expect(typeof doc.entries[5]!.at).toBe("string"); // ISO-8601, as on the wire

    const grpc = ["--transport", "grpc", "--url", node.grpcAddress!];
    const human = await cli([...grpc, "resourcelease", "history", "--request-id", "order-1"]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout).toMatch(/^item 1 \(requestId order-1\)/);
    expect(human.stdout).toMatch(/LeaseRefused\s+w1\s+1\s+1\s+refused heartbeat \(resourcelease\.lease\.fenced\)/);
    expect(human.stdout).toMatch(/Failed\s+w1\s+1\s+1\s+resourcelease\.failed: flaky/);
  });

  it("an unknown item exits 3 naming item.not_found; no id, or both, is a usage error (exit 2)", async () => {
    const unknown = await cli(["--url", node.url, "resourcelease", "history", "99"]);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/resourcelease\.item\.not_found/);
    expect((await cli(["--url", node.url, "resourcelease", "history"])).code).toBe(2);
    expect((await cli(["--url", node.url, "resourcelease", "history", "1", "--request-id", "x"])).code).toBe(2);
    expect((await cli(["--url", node.url, "resourcelease", "history", "zero"])).code).toBe(2);
  });
});
