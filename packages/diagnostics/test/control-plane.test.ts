import { afterEach, describe, expect, it } from "vitest";
import { closeAll, openSse, parseExposition, payload, rpc, sampleValue, startNode } from "./harness.js";

afterEach(closeAll);

/** DESIGN.md §7 in Prometheus form, with the type each must have. */
const designMetrics: ReadonlyArray<readonly [string, string]> = [
  ["omnirelay_resourcelease_pending", "gauge"],
  ["omnirelay_resourcelease_active", "gauge"],
  ["omnirelay_resourcelease_backpressure_transitions_total", "counter"],
  ["omnirelay_resourcelease_replication_events_total", "counter"],
  ["omnirelay_resourcelease_replication_lag", "histogram"],
  ["omnirelay_peer_lease_healthy", "gauge"],
  ["omnirelay_peer_lease_unhealthy", "gauge"],
  ["omnirelay_peer_lease_pending_reassignments", "gauge"],
  ["omnirelay_peer_lease_assignments_total", "counter"],
  ["omnirelay_peer_lease_heartbeats_total", "counter"],
  ["omnirelay_peer_lease_disconnects_total", "counter"],
  ["omnirelay_peer_lease_ejections_total", "counter"],
  ["omnirelay_peer_lease_ejected", "gauge"],
  ["omnirelay_http_requests_total", "counter"],
  ["omnirelay_http_request_duration", "histogram"],
];

describe("control plane mounted as the HttpInbound fallback", () => {
  it("serves every GET endpoint on the RPC port with the queue's real state", async () => {
    const node = await startNode();
    const ns = node.namespace;
    const base = `${node.url}/omnirelay/control`;

    // No transition yet: 204.
    expect((await fetch(`${base}/backpressure`)).status).toBe(204);
    const sse = await openSse(`${base}/backpressure/stream`);
    await sse.waitFor(/: connected/);

    for (const id of ["a", "b", "c"]) await rpc(node.url, `${ns}::enqueue`, { payload: payload(id) });
    const streamed = await sse.waitFor(/event: backpressure\n[^\n]*\n\n/);
    const data = JSON.parse(/event: backpressure\ndata: (.*)\n/.exec(streamed)?.[1] ?? "null");
    expect(data).toMatchObject({ shard: ns, isActive: true, pendingCount: 3, highWatermark: 3, lowWatermark: 1 });

    const latest = await fetch(`${base}/backpressure`);
    expect(latest.status).toBe(200);
    expect(await latest.json()).toMatchObject({ shards: [{ shard: ns, isActive: true, pendingCount: 3 }] });

    const lease = await rpc(node.url, `${ns}::lease`, { peerId: "worker-1", maxItems: 2 });
    expect(lease.items).toHaveLength(2);
    await rpc(node.url, `${ns}::complete`, { ownershipToken: lease.items[0].ownershipToken });
    // Pending went 3 → 1: the gate cleared and the stream saw it too.
    await sse.waitFor(/"isActive":false/);

    const queues = (await (await fetch(`${base}/queues`)).json()) as any;
    expect(queues.queues).toEqual([
      expect.objectContaining({
        namespace: ns,
        state: "running",
        pendingCount: 1,
        activeLeaseCount: 1,
        deadLetterCount: 0,
        delayedCount: 0,
      }),
    ]);
    const lastEventSequence = queues.queues[0].lastEventSequence as number;
    expect(lastEventSequence).toBeGreaterThanOrEqual(6);

    const health = (await (await fetch(`${base}/lease-health`)).json()) as any;
    expect(health.summary).toEqual({ eligiblePeers: 1, unhealthyPeers: 0, pendingReassignments: 0, ejectedPeers: 0 });
    expect(health.peers).toEqual([expect.objectContaining({ peerId: "worker-1", activeAssignments: 1 })]);

    const checkpoint = (await (await fetch(`${base}/replication/checkpoint`)).json()) as any;
    expect(checkpoint.sinks).toEqual([
      {
        sink: "audit",
        shard: ns,
        lastSequence: lastEventSequence,
        lagMs: 0,
        queueLastEventSequence: lastEventSequence,
        behindEvents: 0,
      },
    ]);

    expect(await (await fetch(`${base}/logging`)).json()).toEqual({ level: "info" });
    expect(await (await fetch(`${base}/tracing`)).json()).toEqual({ enabled: true, samplingProbability: 1 });

    // HttpInbound answers /healthz and /readyz itself; its readiness includes the control plane's checks.
    expect((await fetch(`${node.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${node.url}/readyz`)).status).toBe(200);

    const metrics = await fetch(`${node.url}/metrics`);
    expect(metrics.headers.get("content-type")).toContain("text/plain");
    const { samples } = parseExposition(await metrics.text());
    expect(sampleValue(samples, "omnirelay_resourcelease_pending{", `shard="${ns}"`)).toBe(1);
    expect(sampleValue(samples, "omnirelay_resourcelease_active{", `shard="${ns}"`)).toBe(1);
    expect(sampleValue(samples, "omnirelay_resourcelease_backpressure_transitions_total", 'state="active"')).toBe(1);
    expect(sampleValue(samples, "omnirelay_resourcelease_backpressure_transitions_total", 'state="inactive"')).toBe(1);
    expect(sampleValue(samples, "omnirelay_resourcelease_replication_events_total", 'event_type="Enqueue"')).toBe(3);
    expect(sampleValue(samples, "omnirelay_resourcelease_replication_events_total", 'event_type="LeaseGranted"')).toBe(
      2,
    );
    expect(sampleValue(samples, "omnirelay_resourcelease_replication_lag_count", 'sink="audit"')).toBe(
      lastEventSequence,
    );
    expect(sampleValue(samples, "omnirelay_peer_lease_healthy")).toBe(1);
    expect(sampleValue(samples, "omnirelay_peer_lease_assignments_total")).toBe(2);
    expect(
      sampleValue(
        samples,
        "omnirelay_http_requests_total",
        `procedure="${ns}::enqueue"`,
        'status="ok"',
        'transport="http"',
      ),
    ).toBe(3);
    expect(sampleValue(samples, "omnirelay_http_request_duration_count", `procedure="${ns}::lease"`)).toBe(1);
    // Bounded labels: a peer id only as the `peer` label of the per-peer families (at most maxPeerLabels of them),
    // resource ids nowhere.
    const perPeer =
      /^omnirelay_peer_(lease_peers|lease_active_leases|lease_heartbeat_age_seconds|lease_grants_total|lease_expiries_total)\{/;
    const withPeer = samples.filter((s) => s.includes("worker-1"));
    expect(withPeer.length).toBeGreaterThan(0);
    for (const line of withPeer) {
      expect(line).toMatch(perPeer);
      expect(line).toContain('peer="worker-1"');
    }
    expect(sampleValue(samples, "omnirelay_peer_lease_grants_total{", 'peer="worker-1"')).toBe(2);
  });

  it("lists every DESIGN §7 metric with its TYPE line, before any traffic too", async () => {
    const node = await startNode();
    const text = await (await fetch(`${node.url}/metrics`)).text();
    const { types } = parseExposition(text);
    for (const [name, type] of designMetrics) expect({ name, type: types.get(name) }).toEqual({ name, type });
  });

  it("counts peer counters by delta between scrapes and never double counts", async () => {
    const node = await startNode();
    const ns = node.namespace;
    await rpc(node.url, `${ns}::enqueue`, { payload: payload("x") });
    const lease = await rpc(node.url, `${ns}::lease`, { peerId: "w" });
    await rpc(node.url, `${ns}::heartbeat`, { ownershipToken: lease.ownershipToken });
    const scrape = async () => parseExposition(await (await fetch(`${node.url}/metrics`)).text()).samples;
    const first = await scrape();
    const second = await scrape();
    for (const samples of [first, second]) {
      expect(sampleValue(samples, "omnirelay_peer_lease_assignments_total")).toBe(1);
      expect(sampleValue(samples, "omnirelay_peer_lease_heartbeats_total")).toBe(1);
    }
  });

  it("never puts an unknown raw procedure string in a label", async () => {
    const node = await startNode();
    const res = await fetch(node.url, {
      method: "POST",
      headers: { "rpc-procedure": "no-such::thing-123", "content-type": "application/json" },
      body: "{}",
    });
    expect(res.status).toBe(501);
    const { samples } = parseExposition(await (await fetch(`${node.url}/metrics`)).text());
    expect(samples.some((s) => s.includes("no-such"))).toBe(false);
  });

  it("takes the POST toggles on the RPC port too", async () => {
    const node = await startNode();
    const res = await fetch(`${node.url}/omnirelay/control/logging`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ level: "debug" }),
    });
    expect(res.status).toBe(200);
    expect(node.control.toggles.logging.level).toBe("debug");
  });

  it("leaves routes that are not its own to the inbound (404 from HttpInbound)", async () => {
    const node = await startNode();
    const res = await fetch(`${node.url}/omnirelay/control/nope`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).code).toBe("omnirelay.route.not_found");
  });

  it("reports not ready when the queue drains and when a replication sink lags", async () => {
    const node = await startNode({ maxReplicationLagMs: 50 });
    const ns = node.namespace;
    node.control.addReplicationSource({ sink: "hub", shard: ns, checkpoint: () => ({ lastSequence: 0, lagMs: 500 }) });
    await rpc(node.url, `${ns}::enqueue`, { payload: payload("x") });
    let ready = (await (await fetch(`${node.url}/readyz`)).json()) as any;
    expect(ready.status).toBe("unavailable");
    expect(ready.issues.join(" ")).toContain(`replication hub/${ns} lags 500 ms`);

    const own = await node.control.listen();
    const rows = ((await (await fetch(`${own.url}/omnirelay/control/replication/checkpoint`)).json()) as any).sinks;
    expect(rows).toContainEqual({
      sink: "hub",
      shard: ns,
      lastSequence: 0,
      lagMs: 500,
      queueLastEventSequence: 1,
      behindEvents: 1,
    });

    await rpc(node.url, `${ns}::drain`, {});
    const res = await fetch(`${own.url}/readyz`);
    expect(res.status).toBe(503);
    ready = await res.json();
    expect(ready.issues).toContain(`queue ${ns} is draining`);
  });
});
