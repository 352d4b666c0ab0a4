import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cli, json, startNode, type TestNode } from "./harness.js";

describe("peers shows outlier ejection", () => {
  let node: TestNode;
  beforeEach(async () => {
    node = await startNode({ controlPlane: true, ejection: { consecutiveExpiries: 3, baseEjectionMs: 120_000 } });
  });
  afterEach(async () => {
    await node.close();
  });

  it("lists an ejected peer as unhealthy with its reason and until when, and counts it in the summary", async () => {
    node.tracker.recordPoll("good");
    let n = 0;
    const event = (eventType: "LeaseGranted" | "LeaseExpired", sequenceId: number): ResourceLeaseReplicationEvent => ({
      sequenceNumber: ++n,
      eventType,
      timestamp: Date.now(),
      metadata: {},
      peerId: "bad",
      ownership: { sequenceId, attempt: 1, leaseId: `l-${sequenceId}`, fencingToken: sequenceId },
    });
    for (const id of [1, 2, 3]) {
      node.tracker.observe(event("LeaseGranted", id));
      node.tracker.observe(event("LeaseExpired", id));
    }
    const until = node.tracker.ejection("bad")?.ejectedUntil;
    expect(until).toBeDefined();
    const iso = new Date(until as number).toISOString();

    const run = await cli(["--control-url", node.url, "--json", "resourcelease", "peers"]);
    expect(run.code, run.stderr).toBe(0);
    const doc = json(run);
    expect(doc.peers.map((p: any) => p.peerId)).toEqual(["bad", "good"]);
    expect(doc.peers[0]).toMatchObject({ isHealthy: false, ejectedUntil: iso, ejectionReason: "consecutive-expiries" });
    expect(doc.peers[0].ejectedForMs).toBeGreaterThan(100_000);
    expect(doc.peers[1].ejectedUntil).toBeUndefined();
    expect(doc.summary).toMatchObject({ ejectedPeers: 1, unhealthyPeers: 1 });

    const human = await cli(["--url", node.url, "resourcelease", "peers"]);
    const lines = human.stdout.split("\n");
    expect(lines[1]).toMatch(
      new RegExp(`^bad\\s+NO\\s+.*\\s+until ${iso.replace(/\./g, "\\.")} \\(consecutive-expiries\\)$`),
    );
    expect(lines[2]).toMatch(/^good\s+yes\s+.*\s+-$/);
    expect(human.stdout).toMatch(/1 healthy, 1 unhealthy, 3 pending reassignments, 1 ejected/);
  });
});
