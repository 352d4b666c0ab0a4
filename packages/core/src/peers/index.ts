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
export type { PeerEjection, PeerEjectionOptions } from "./peer-ejection.js";
export type { PeerExpiryRateOptions } from "./peer-expiry-rate.js";
export {
  PeerLeaseHealthDiagnostics,
  type PeerLeaseHealthDiagnosticsLease,
  type PeerLeaseHealthDiagnosticsPeer,
  type PeerLeaseHealthDiagnosticsSummary,
} from "./peer-lease-health-diagnostics.js";
export { PeerLeaseHealthTracker } from "./peer-lease-health-tracker.js";
export type {
  PeerDisconnectAlert,
  PeerGossipOptions,
  PeerLeaseAssignmentInfo,
  PeerLeaseHealthStats,
  PeerLeaseHealthTrackerOptions,
  PeerLeaseReleaseInfo,
} from "./peer-lease-health-types.js";
export { PeerList } from "./peer-list.js";
