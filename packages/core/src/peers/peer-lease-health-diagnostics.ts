import type { PeerLeaseHealthSnapshot } from "../contracts/health.js";

/** One active lease in the diagnostics payload. */
export interface PeerLeaseHealthDiagnosticsLease {
  readonly sequenceId: number;
  readonly attempt: number;
  readonly leaseId: string;
  readonly fencingToken: number;
}

/** One peer in the diagnostics payload. Times are ISO-8601 strings; absent times are omitted. */
export interface PeerLeaseHealthDiagnosticsPeer {
  readonly peerId: string;
  /** Last liveness signal; omitted when the peer was never seen alive. */
  readonly lastHeartbeat?: string;
  readonly lastDisconnect?: string;
  readonly isHealthy: boolean;
  /** While the peer is ejected by outlier detection: until when; it gets no new leases before. */
  readonly ejectedUntil?: string;
  /** While ejected: why (e.g. `"consecutive-expiries"`). */
  readonly ejectionReason?: string;
  /** While ejected: how many times the peer was ejected, this one included. */
  readonly ejections?: number;
  /** Number of active leases. */
  readonly activeAssignments: number;
  readonly pendingReassignments: number;
  readonly activeLeases: readonly PeerLeaseHealthDiagnosticsLease[];
  readonly metadata: Readonly<Record<string, string>>;
}

/** Totals over every peer of the diagnostics payload. */
export interface PeerLeaseHealthDiagnosticsSummary {
  /** Number of healthy peers. */
  readonly eligiblePeers: number;
  readonly unhealthyPeers: number;
  /** Sum of every peer's pending reassignments. */
  readonly pendingReassignments: number;
  /** Peers ejected by outlier detection right now (counted among the unhealthy ones). */
  readonly ejectedPeers: number;
}

/** The JSON-ready peer health payload served by the diagnostics control plane. */
export interface PeerLeaseHealthDiagnostics {
  readonly peers: readonly PeerLeaseHealthDiagnosticsPeer[];
  readonly summary: PeerLeaseHealthDiagnosticsSummary;
}

function iso(ms: number | undefined): string | undefined {
  return ms === undefined ? undefined : new Date(ms).toISOString();
}

/** Builds {@link PeerLeaseHealthDiagnostics} payloads. */
export const PeerLeaseHealthDiagnostics = {
  /** Converts health snapshots (in their order) into the JSON-ready diagnostics payload. */
  fromSnapshots(snapshots: readonly PeerLeaseHealthSnapshot[]): PeerLeaseHealthDiagnostics {
    let eligiblePeers = 0;
    let pendingReassignments = 0;
    let ejectedPeers = 0;
    const peers = snapshots.map((snapshot): PeerLeaseHealthDiagnosticsPeer => {
      if (snapshot.isHealthy) eligiblePeers++;
      pendingReassignments += snapshot.pendingReassignments;
      const lastHeartbeat = iso(snapshot.lastHeartbeat);
      const lastDisconnect = iso(snapshot.lastDisconnect);
      const ejectedUntil = iso(snapshot.ejectedUntil);
      if (ejectedUntil !== undefined) ejectedPeers++;
      return {
        peerId: snapshot.peerId,
        ...(lastHeartbeat === undefined ? {} : { lastHeartbeat }),
        ...(lastDisconnect === undefined ? {} : { lastDisconnect }),
        isHealthy: snapshot.isHealthy,
        ...(ejectedUntil === undefined
          ? {}
          : { ejectedUntil, ejectionReason: snapshot.ejectionReason ?? "unknown", ejections: snapshot.ejections ?? 1 }),
        activeAssignments: snapshot.activeLeases.length,
        pendingReassignments: snapshot.pendingReassignments,
        activeLeases: snapshot.activeLeases.map(({ sequenceId, attempt, leaseId, fencingToken }) => ({
          sequenceId,
          attempt,
          leaseId,
          fencingToken,
        })),
        metadata: { ...snapshot.metadata },
      };
    });
    return {
      peers,
      summary: { eligiblePeers, unhealthyPeers: snapshots.length - eligiblePeers, pendingReassignments, ejectedPeers },
    };
  },
} as const;
