import type { PeerLeaseHealthDiagnosticsPeer } from "@omnirelay/core/peers";
import type { Command } from "commander";
import { controlUrl, getControlJson, globals } from "../context.js";
import { age, emit, table } from "../output.js";

/** One row of the peer triage table. */
export interface PeerRow {
  readonly peerId: string;
  readonly isHealthy: boolean;
  readonly activeLeases: number;
  readonly pendingReassignments: number;
  readonly lastHeartbeat?: string;
  readonly lastHeartbeatAgeMs?: number;
  readonly lastDisconnect?: string;
  readonly disconnectReason?: string;
  /** While the peer is ejected by outlier detection: until when (ISO-8601) and why. */
  readonly ejectedUntil?: string;
  readonly ejectionReason?: string;
  /** While ejected: ms until it may lease again. */
  readonly ejectedForMs?: number;
}

/**
 * Ranks peers for triage: unhealthy (disconnected, silent or ejected) first, then most pending reassignments, then
 * oldest (or no) heartbeat.
 */
export function rankPeers(peers: readonly PeerLeaseHealthDiagnosticsPeer[], now: number): PeerRow[] {
  const rows = peers.map((p): PeerRow => {
    const hb = p.lastHeartbeat ? Date.parse(p.lastHeartbeat) : Number.NaN;
    const reason = p.metadata?.["disconnect.reason"];
    const until = p.ejectedUntil ? Date.parse(p.ejectedUntil) : Number.NaN;
    return {
      peerId: p.peerId,
      isHealthy: p.isHealthy,
      activeLeases: p.activeAssignments ?? p.activeLeases?.length ?? 0,
      pendingReassignments: p.pendingReassignments ?? 0,
      ...(p.lastHeartbeat ? { lastHeartbeat: p.lastHeartbeat } : {}),
      ...(Number.isNaN(hb) ? {} : { lastHeartbeatAgeMs: Math.max(0, now - hb) }),
      ...(p.lastDisconnect ? { lastDisconnect: p.lastDisconnect } : {}),
      ...(reason && !p.isHealthy ? { disconnectReason: reason } : {}),
      ...(p.ejectedUntil ? { ejectedUntil: p.ejectedUntil, ejectionReason: p.ejectionReason ?? "unknown" } : {}),
      ...(Number.isNaN(until) ? {} : { ejectedForMs: Math.max(0, until - now) }),
    };
  });
  const ageOf = (r: PeerRow) => r.lastHeartbeatAgeMs ?? Number.POSITIVE_INFINITY;
  return rows.sort(
    (a, b) =>
      Number(a.isHealthy) - Number(b.isHealthy) ||
      b.pendingReassignments - a.pendingReassignments ||
      ageOf(b) - ageOf(a) ||
      a.peerId.localeCompare(b.peerId),
  );
}

/** Registers peers. */
export function registerPeersCommand(rl: Command): void {
  rl.command("peers")
    .description("ranked peer triage table from the control plane's /omnirelay/control/lease-health")
    .action(async (_o, cmd: Command) => {
      const g = globals(cmd);
      const doc = (await getControlJson(g, controlUrl(g), "omnirelay/control/lease-health")) as
        | { peers?: PeerLeaseHealthDiagnosticsPeer[]; summary?: Record<string, number> }
        | undefined;
      const peers = rankPeers(doc?.peers ?? [], Date.now());
      const summary = doc?.summary ?? {};
      emit(g.json, { peers, summary }, () => {
        const rows = peers.map((p) => [
          p.peerId,
          p.isHealthy ? "yes" : "NO",
          p.activeLeases,
          p.pendingReassignments,
          age(p.lastHeartbeatAgeMs),
          p.disconnectReason ?? "-",
          p.ejectedUntil ? `until ${p.ejectedUntil} (${p.ejectionReason})` : "-",
        ]);
        const columns = ["PEER", "HEALTHY", "ACTIVE", "PENDING-REASSIGN", "LAST-HEARTBEAT", "DISCONNECT", "EJECTED"];
        const head = table(columns, rows);
        const sum = `${summary.eligiblePeers ?? 0} healthy, ${summary.unhealthyPeers ?? 0} unhealthy, ${summary.pendingReassignments ?? 0} pending reassignments, ${summary.ejectedPeers ?? 0} ejected`;
        return peers.length ? `${head}\n\n${sum}` : `no peers reported\n${sum}`;
      });
    });
}
