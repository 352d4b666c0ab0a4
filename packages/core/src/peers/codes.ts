import { ResourceLeaseErrorCodes } from "../errors/codes.js";
import { type OmniRelayError, omniError } from "../errors/omnirelay-error.js";

/**
 * Stable error codes of peer selection. Clients match on these strings; never rename one.
 * The status each code travels with is fixed and listed beside it.
 */
export const PeerErrorCodes = {
  /** unavailable: the peer list is empty. */
  noneRegistered: "peers.none_registered",
  /** unavailable: no peer is available and eligible, and the caller gave no deadline. */
  noneAvailable: "peers.none_available",
  /** resource-exhausted: every available, eligible peer is at its concurrency limit. */
  allBusy: "peers.all_busy",
  /** deadline-exceeded: no peer could be acquired before the caller's deadline. */
  deadlineExceeded: "peers.deadline_exceeded",
  /** cancelled: the caller's signal aborted the acquisition. */
  cancelled: "peers.cancelled",
  /** invalid-argument: an argument of a peer call is out of range; metadata `field` names it. */
  argumentInvalid: "peers.argument_invalid",
  /** already-exists: a peer with the same id is already in the list. */
  duplicatePeer: "peers.duplicate_peer",
} as const;

/** Union of every code in {@link PeerErrorCodes}. */
export type PeerErrorCode = (typeof PeerErrorCodes)[keyof typeof PeerErrorCodes];

/** Builds the error a constructor in this folder throws for a bad option. Internal. */
export function invalidOption(option: string, message: string): OmniRelayError {
  return omniError("invalid-argument", ResourceLeaseErrorCodes.optionsInvalid, message, { option });
}
