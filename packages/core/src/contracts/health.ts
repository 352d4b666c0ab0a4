import type { ResourceLeaseOwnershipToken } from "./payload.js";

/** A backpressure transition or observation. */
export interface ResourceLeaseBackpressureSignal {
  readonly isActive: boolean;
  readonly pendingCount: number;
  /** ms since the epoch. */
  readonly observedAt: number;
  readonly highWatermark: number;
  readonly lowWatermark: number;
}

/** Receives backpressure transitions. A listener that throws or rejects never affects the queue. */
export interface ResourceLeaseBackpressureListener {
  onBackpressureChanged(signal: ResourceLeaseBackpressureSignal): void | Promise<void>;
}

/** Health of one peer as seen by a lease-health tracker. */
export interface PeerLeaseHealthSnapshot {
  readonly peerId: string;
  /** ms since the epoch; `undefined` when the peer was never seen alive. */
  readonly lastHeartbeat?: number;
  readonly lastDisconnect?: number;
  /** Eligible for work: not disconnected, seen alive within the grace period, and not ejected. */
  readonly isHealthy: boolean;
  /** While the peer is ejected by outlier detection: until when (ms since the epoch). */
  readonly ejectedUntil?: number;
  /** While ejected: why (e.g. `"consecutive-expiries"`). */
  readonly ejectionReason?: string;
  /** While ejected: how many times the peer was ejected, this one included. */
  readonly ejections?: number;
  readonly activeLeases: readonly ResourceLeaseOwnershipToken[];
  /** Leases of this peer that went back to the queue and have not been granted again yet. */
  readonly pendingReassignments: number;
  readonly metadata: Readonly<Record<string, string>>;
}

/** Anything that can report peer health (implemented by `PeerLeaseHealthTracker`). */
export interface PeerHealthSnapshotProvider {
  snapshot(): readonly PeerLeaseHealthSnapshot[];
  /** Whether the peer may receive work; an unknown peer is eligible. */
  isPeerEligible(peerId: string): boolean;
}

/** A pino-compatible logger. Core never logs tokens or secrets. */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
}

/** A logger that discards everything (the default). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
