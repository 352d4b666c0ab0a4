import type { ResourceLeaseReplicationEvent } from "../contracts/events.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { hashReplicationEvent } from "./chain.js";

/** The first place a stream stops being the queue's stream, as {@link EventChainVerifier} reports it. */
export interface EventChainDivergence {
  /** The first event that diverges (for a gap: the first missing sequence number). */
  readonly sequenceNumber: number;
  /** `ErrorCodes.replication.sequenceGap`, `.chainBroken` or `.eventUnreadable`. */
  readonly code: string;
  /** One line for an operator. */
  readonly reason: string;
}

/** Where the stream to verify starts, e.g. after a snapshot. */
export interface EventChainStart {
  /** Sequence number of the event before the first one read (a snapshot's `lastEventSequence`). @defaultValue 0 */
  readonly afterSequence?: number;
  /** Hash of that event (a snapshot's `lastEventHash`), when known. */
  readonly afterHash?: string;
}

/** Events without `previousHash` before the chain starts (written before the chain existed) are accepted unlinked. */
interface BrokenLink {
  /** The event whose `previousHash` did not match its predecessor's hash. */
  readonly sequenceNumber: number;
  readonly reason: string;
}

/**
 * Checks an event stream, in order, for sequence gaps and hash-chain breaks, and names the first divergent event.
 *
 * A break of the link into event `n` (its `previousHash` is not the hash of event `n - 1`) means event `n - 1` was
 * altered, or event `n`'s `previousHash` was. The verifier tells them apart with the next link: when the link into
 * `n + 1` breaks too, event `n` itself changed; otherwise event `n - 1` did. The last event of a stream has no
 * successor to vouch for it: compare {@link lastHash} with a trusted head (a live queue's, another sink's).
 */
export class EventChainVerifier {
  private expected: number;
  private previous: string | undefined;
  private suspect: BrokenLink | undefined;
  private found: EventChainDivergence | undefined;
  /** Events accepted so far. */
  count = 0;
  /**
   * First sequence number the chain covers: the predecessor of the first event that carried `previousHash` (when it
   * was read, or is the start's), else that event; undefined when no event carried one (a log older than the chain).
   */
  chainStartsAt: number | undefined;

  constructor(start: EventChainStart = {}) {
    this.expected = (start.afterSequence ?? 0) + 1;
    this.previous = start.afterHash;
  }

  /** Sequence number of the last event pushed (the start's `afterSequence` before any). */
  get lastSequence(): number {
    return this.expected - 1;
  }

  /** Hash of the last event pushed. */
  get lastHash(): string | undefined {
    return this.previous;
  }

  /** The first divergence found so far (settled only after {@link finish}). */
  get divergence(): EventChainDivergence | undefined {
    return this.found;
  }

  /** Checks the next event; answers the first divergence once it is known (then every later call answers it). */
  push(event: ResourceLeaseReplicationEvent): EventChainDivergence | undefined {
    if (this.found) return this.found;
    const n = event.sequenceNumber;
    if (n !== this.expected) {
      return this.settle({
        sequenceNumber: this.expected,
        code: ErrorCodes.replication.sequenceGap,
        reason: `expected event ${this.expected}, found ${n}`,
      });
    }
    const broken = this.link(event);
    if (broken === "missing") {
      return this.settle({
        sequenceNumber: n,
        code: ErrorCodes.replication.chainBroken,
        reason: `event ${n} carries no previousHash after the chain started at ${this.chainStartsAt}`,
      });
    }
    if (this.suspect) {
      // The link into the suspect broke; if this one breaks too, the suspect itself changed, else its predecessor.
      const s = this.suspect;
      const at = broken ? s.sequenceNumber : s.sequenceNumber - 1;
      return this.settle({ sequenceNumber: at, code: ErrorCodes.replication.chainBroken, reason: s.reason });
    }
    if (broken) this.suspect = broken;
    this.previous = hashReplicationEvent(event);
    this.expected = n + 1;
    this.count++;
    return undefined;
  }

  /** Records that the event at the next sequence number could not be read. */
  unreadable(detail: string, sequenceNumber = this.expected): EventChainDivergence {
    return this.settle(
      this.found ?? { sequenceNumber, code: ErrorCodes.replication.eventUnreadable, reason: `unreadable: ${detail}` },
    );
  }

  /** Ends the stream: settles a break of the last link (blamed on the predecessor), answers the first divergence. */
  finish(): EventChainDivergence | undefined {
    if (!this.found && this.suspect) {
      const s = this.suspect;
      this.settle({
        sequenceNumber: s.sequenceNumber - 1,
        code: ErrorCodes.replication.chainBroken,
        reason: `${s.reason} (or event ${s.sequenceNumber}'s previousHash was altered: it is the last)`,
      });
    }
    return this.found;
  }

  /** Throws the first divergence as an OmniRelayError (data-loss, metadata `replication.sequence`). */
  static toError(divergence: EventChainDivergence): OmniRelayError {
    return new OmniRelayError({
      status: "data-loss",
      code: divergence.code,
      message: `The stream diverges at event ${divergence.sequenceNumber}: ${divergence.reason}.`,
      metadata: { "replication.sequence": String(divergence.sequenceNumber) },
    });
  }

  private link(event: ResourceLeaseReplicationEvent): BrokenLink | "missing" | undefined {
    const n = event.sequenceNumber;
    if (event.previousHash === undefined) return this.chainStartsAt === undefined ? undefined : "missing";
    // The link into the first hashed event vouches for its predecessor too, when that was read.
    this.chainStartsAt ??= this.count > 0 || this.previous !== undefined ? n - 1 : n;
    if (this.previous === undefined || event.previousHash === this.previous) return undefined;
    return { sequenceNumber: n, reason: `event ${n - 1} does not hash to the previousHash event ${n} carries` };
  }

  private settle(divergence: EventChainDivergence): EventChainDivergence {
    this.found = divergence;
    return divergence;
  }
}
