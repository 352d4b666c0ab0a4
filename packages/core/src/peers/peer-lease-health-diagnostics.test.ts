import { describe, expect, it } from "vitest";
import { FakeClock } from "../testing/fake-clock.js";
import { PeerLeaseHealthDiagnostics } from "./peer-lease-health-diagnostics.js";
import { PeerLeaseHealthTracker } from "./peer-lease-health-tracker.js";
import { eventFactory, token } from "./test-helpers.js";

describe("PeerLeaseHealthDiagnostics.fromSnapshots", () => {
  it("builds the JSON payload with ISO times, lease details and a summary", () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const tracker = new PeerLeaseHealthTracker({ clock, gracePeriodMs: 1_000 });
    tracker.recordLeaseAssignment("a", token(1, 1, 7), { resourceType: "table" });
    tracker.recordLeaseAssignment("a", token(2, 1, 8));
    tracker.recordLeaseReleased("a", token(2, 1, 8), { requeued: true });
    tracker.recordPoll("b");
    clock.advance(500);
    tracker.recordDisconnect("b", "gone");
    tracker.recordGossip("c", { "mesh.role": "worker" });

    const diagnostics = PeerLeaseHealthDiagnostics.fromSnapshots(tracker.snapshot());

    expect(diagnostics).toEqual({
      peers: [
        {
          peerId: "a",
          lastHeartbeat: "2026-01-01T00:00:00.000Z",
          isHealthy: true,
          activeAssignments: 1,
          pendingReassignments: 1,
          activeLeases: [{ sequenceId: 1, attempt: 1, leaseId: "lease-1-1", fencingToken: 7 }],
          metadata: { "resource.type": "table" },
        },
        {
          peerId: "b",
          lastHeartbeat: "2026-01-01T00:00:00.000Z",
          lastDisconnect: "2026-01-01T00:00:00.500Z",
          isHealthy: false,
          activeAssignments: 0,
          pendingReassignments: 0,
          activeLeases: [],
          metadata: { "disconnect.reason": "gone" },
        },
        {
          peerId: "c",
          isHealthy: false,
          activeAssignments: 0,
          pendingReassignments: 0,
          activeLeases: [],
          metadata: { "mesh.role": "worker" },
        },
      ],
      summary: { eligiblePeers: 1, unhealthyPeers: 2, pendingReassignments: 1, ejectedPeers: 0 },
    });
    // Absent times are omitted, not null or undefined, so the JSON round trip is exact.
    expect(JSON.parse(JSON.stringify(diagnostics))).toEqual(diagnostics);
    expect(Object.keys(diagnostics.peers[2] ?? {})).not.toContain("lastHeartbeat");
  });

  it("summarises an empty snapshot list", () => {
    expect(PeerLeaseHealthDiagnostics.fromSnapshots([])).toEqual({
      peers: [],
      summary: { eligiblePeers: 0, unhealthyPeers: 0, pendingReassignments: 0, ejectedPeers: 0 },
    });
  });

  it("shows an ejected peer as unhealthy with why, until when and how many times", () => {
    const clock = new FakeClock(Date.UTC(2026, 0, 1));
    const tracker = new PeerLeaseHealthTracker({ clock, ejection: { consecutiveExpiries: 2, baseEjectionMs: 60_000 } });
    const event = eventFactory(clock);
    tracker.recordPoll("good");
    for (const n of [1, 2]) {
      tracker.observe(event("LeaseGranted", { peerId: "bad", ownership: token(n) }));
      tracker.observe(event("LeaseExpired", { peerId: "bad", ownership: token(n) }));
    }

    const diagnostics = PeerLeaseHealthDiagnostics.fromSnapshots(tracker.snapshot());

    expect(diagnostics.peers[0]).toMatchObject({
      peerId: "bad",
      isHealthy: false,
      ejectedUntil: "2026-01-01T00:01:00.000Z",
      ejectionReason: "consecutive-expiries",
      ejections: 1,
    });
    expect(diagnostics.peers[1]?.ejectedUntil).toBeUndefined();
    expect(diagnostics.summary).toEqual({
      eligiblePeers: 1,
      unhealthyPeers: 1,
      pendingReassignments: 2,
      ejectedPeers: 1,
    });
  });
});
