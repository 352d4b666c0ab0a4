import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { cli, json, startNode, type TestNode } from "./harness.js";

const payload = (id: string) => ({ resourceType: "table", resourceId: id, partitionKey: "p", payloadEncoding: "json" });

describe("control-plane views (@omnirelay/diagnostics mounted on the HTTP inbound)", () => {
  let node: TestNode;
  beforeEach(async () => {
    node = await startNode({ namespaces: ["resourcelease", "resourcelease.billing"], controlPlane: true });
  });
  afterEach(async () => {
    await node.close();
  });

  it("peers ranks unhealthy first, then most pending reassignments, then oldest heartbeat", async () => {
    const q = node.queue();
    for (const id of ["a", "b", "c", "d"]) await q.enqueue(payload(id));
    // Leases through the wire so the component records liveness and assignments per peer.
    const lease = async (peer: string) =>
      json(await cli(["--url", node.url, "--json", "resourcelease", "lease", "--peer-id", peer])).items[0];
    await lease("fresh");
    const flaky = await lease("flaky");
    await cli(["--url", node.url, "resourcelease", "fail", "--token-json", JSON.stringify(flaky.ownershipToken)]);
    await lease("gone");
    node.tracker.recordDisconnect("gone", "gossip-left");
    await new Promise((r) => setTimeout(r, 30));
    await lease("fresh"); // refreshes fresh's heartbeat; flaky's is now older

    const run = await cli(["--control-url", node.url, "--json", "resourcelease", "peers"]);
    expect(run.code, run.stderr).toBe(0);
    const doc = json(run);
    expect(doc.peers.map((p: any) => p.peerId)).toEqual(["gone", "flaky", "fresh"]);
    expect(doc.peers[0]).toMatchObject({ isHealthy: false, activeLeases: 1, disconnectReason: "gossip-left" });
    expect(doc.peers[1]).toMatchObject({ isHealthy: true, pendingReassignments: 1, activeLeases: 0 });
    expect(doc.peers[2]).toMatchObject({ isHealthy: true, pendingReassignments: 0, activeLeases: 2 });
    expect(doc.peers[2].lastHeartbeatAgeMs).toBeLessThan(doc.peers[1].lastHeartbeatAgeMs + 1);
    expect(doc.summary).toMatchObject({ eligiblePeers: 2, unhealthyPeers: 1 });

    // Over HTTP the control plane defaults to --url; the table names the columns of the triage runbook.
    const human = await cli(["--url", node.url, "resourcelease", "peers"]);
    const lines = human.stdout.split("\n");
    expect(lines[0]).toMatch(/^PEER\s+HEALTHY\s+ACTIVE\s+PENDING-REASSIGN\s+LAST-HEARTBEAT\s+DISCONNECT\s+EJECTED$/);
    expect(lines[1]).toMatch(/^gone\s+NO\s+1\s+0\s+\S+\s+gossip-left\s+-$/);
    expect(lines[2]).toMatch(/^flaky\s+yes\s+0\s+1\s+\d+m?s\s+-\s+-$/);
    expect(human.stdout).toMatch(/2 healthy, 1 unhealthy, 1 pending reassignments/);
  });

  it("stats --watch refreshes every --interval-ms with control-plane queues; --json prints one document per line", async () => {
    await node.queue("resourcelease.billing").enqueue(payload("bill-1"));
    await node.queue().enqueue(payload("x"));
    const started = Date.now();
    const run = await cli([
      "--url",
      node.url,
      "--control-url",
      node.url,
      "--json",
      "resourcelease",
      "stats",
      "--watch",
      "--interval-ms",
      "150",
      "--count",
      "3",
    ]);
    expect(run.code, run.stderr).toBe(0);
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    const frames = run.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(frames).toHaveLength(3);
    for (const f of frames) {
      expect(f.stats).toMatchObject({ pendingCount: 1, state: "running" });
      expect(f.queues).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ namespace: "resourcelease", pendingCount: 1 }),
          expect.objectContaining({ namespace: "resourcelease.billing", pendingCount: 1 }),
        ]),
      );
    }
    expect(Date.parse(frames[2].at) - Date.parse(frames[0].at)).toBeGreaterThanOrEqual(290);

    const human = await cli([
      "--url",
      node.url,
      "--control-url",
      node.url,
      "resourcelease",
      "stats",
      "--watch",
      "--interval-ms",
      "100",
      "--count",
      "2",
    ]);
    expect(human.code, human.stderr).toBe(0);
    expect(human.stdout.match(/control plane queues:/g)).toHaveLength(2);
    expect(human.stdout).toMatch(/resourcelease\.billing\s+running\s+1\s+0\s+0/);
    expect(human.stdout).not.toContain("\x1b[2J"); // no screen clearing off a TTY
  });

  it("a control-plane error is one line with its code (exit 3); an unreachable control plane is exit 4", async () => {
    const wrong = await cli(["--control-url", `${node.url}/nowhere/`, "resourcelease", "peers"]);
    expect(wrong.code).toBe(3);
    expect(wrong.stderr.trim().split("\n")).toHaveLength(1);
    expect(wrong.stderr).toMatch(/^error: \S+: /);
    const down = await cli(["--control-url", "http://127.0.0.1:1", "resourcelease", "peers"]);
    expect(down.code).toBe(4);
    const grpcNoControl = await cli(["--transport", "grpc", "--url", "127.0.0.1:1", "resourcelease", "peers"]);
    expect(grpcNoControl.code).toBe(2);
  });
});
