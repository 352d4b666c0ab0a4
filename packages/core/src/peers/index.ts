/**
 * `@omnirelay/core/peers`: peer lease health (the tracker every lease poll and event feeds, its diagnostics) and peer
 * choosers.
 * @packageDocumentation
 */
export type { PeerHealthSnapshotProvider, PeerLeaseHealthSnapshot } from "../contracts/health.js";
export { FewestPendingPeerChooser, RoundRobinPeerChooser, TwoRandomChoicesPeerChooser } from "./choosers.js";
export { BasicPeer, type BasicPeerOptions, type Peer, type PeerState, type PeerStatus } from "./peer.js";
export {
  type PeerAcquireOptions,
  type PeerChooser,
  PeerChooserBase,
  type PeerChooserOptions,
  type PeerLease,
  type PeerRejections,
} from "./peer-chooser.js";
export {
  PeerLeaseHealthDiagnostics,
  type PeerLeaseHealthDiagnosticsLease,
  type PeerLeaseHealthDiagnosticsPeer,
  type PeerLeaseHealthDiagnosticsSummary,
} from "./peer-lease-health-diagnostics.js";
export {
  type PeerDisconnectAlert,
  type PeerGossipOptions,
  type PeerLeaseAssignmentInfo,
  type PeerLeaseHealthStats,
  PeerLeaseHealthTracker,
  type PeerLeaseHealthTrackerOptions,
  type PeerLeaseReleaseInfo,
} from "./peer-lease-health-tracker.js";
export { PeerList } from "./peer-list.js";
