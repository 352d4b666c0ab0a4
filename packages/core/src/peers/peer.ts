import { OmniRelayError } from "../errors/omnirelay-error.js";

/** Whether a peer can take calls: only `'available'` peers are chosen. */
export type PeerState = "unknown" | "available" | "unavailable";

/** Current state and load of a peer. */
export interface PeerStatus {
  readonly state: PeerState;
  /** Calls acquired and not yet released. */
  readonly inflight: number;
}

/**
 * An outbound destination. `id` is the peer's identity in the mesh: the same string the worker uses as its lease
 * `peerId`, so a chooser can ask the health tracker about it.
 */
export interface Peer {
  readonly id: string;
  /** Where to reach the peer (a URL), when it differs from `id`. */
  readonly address?: string;
  readonly status: PeerStatus;
  /** Takes one concurrency slot; false when the peer is not available or at its limit. */
  tryAcquire(): boolean;
  /** Gives back a slot taken by `tryAcquire`, reporting whether the call succeeded. */
  release(success: boolean): void;
  /**
   * Optional: calls `listener` whenever the peer may have become acquirable (a slot freed, state changed);
   * returns an unsubscribe function. A `PeerList` uses it to wake waiting choosers.
   */
  onStatusChange?(listener: () => void): () => void;
}

/** Options of {@link BasicPeer}. */
export interface BasicPeerOptions {
  /** The peer's identity, the same as its workers' lease `peerId`. Required, not blank. */
  readonly id: string;
  /** Where to reach the peer. @defaultValue none */
  readonly address?: string;
  /** Most calls in flight at once. @defaultValue `Infinity` */
  readonly maxConcurrency?: number;
  /** Initial state. @defaultValue `'available'` */
  readonly state?: PeerState;
}

/** A peer with a concurrency limit and a settable state; counts successes and failures. */
export class BasicPeer implements Peer {
  readonly id: string;
  readonly address?: string;
  readonly maxConcurrency: number;
  private state: PeerState;
  private inflight = 0;
  private successes = 0;
  private failures = 0;
  private readonly listeners = new Set<() => void>();

  /**
   * @throws OmniRelayError `invalid-argument` `resourcelease.options.invalid` when `id` is blank or
   * `maxConcurrency` is not a positive integer or `Infinity`.
   */
  constructor(options: BasicPeerOptions) {
    if (typeof options.id !== "string" || options.id.trim() === "") {
      throw OmniRelayError.invalidOption("id", "Option 'id' must be a non-blank string.");
    }
    const max = options.maxConcurrency ?? Number.POSITIVE_INFINITY;
    if (typeof max !== "number" || !(max === Number.POSITIVE_INFINITY || (Number.isInteger(max) && max >= 1))) {
      throw OmniRelayError.invalidOption(
        "maxConcurrency",
        `Option 'maxConcurrency' must be an integer >= 1 or Infinity, got ${String(max)}.`,
      );
    }
    this.id = options.id;
    if (options.address !== undefined) this.address = options.address;
    this.maxConcurrency = max;
    this.state = options.state ?? "available";
  }

  /** Current state and inflight count. */
  get status(): PeerStatus {
    return { state: this.state, inflight: this.inflight };
  }

  /** Calls released with success and with failure so far. */
  get outcomes(): { readonly successes: number; readonly failures: number } {
    return { successes: this.successes, failures: this.failures };
  }

  /** Changes the state; listeners hear about it. */
  setState(state: PeerState): void {
    if (state === this.state) return;
    this.state = state;
    this.emit();
  }

  tryAcquire(): boolean {
    if (this.state !== "available" || this.inflight >= this.maxConcurrency) return false;
    this.inflight++;
    return true;
  }

  release(success: boolean): void {
    if (this.inflight === 0) return;
    this.inflight--;
    if (success) this.successes++;
    else this.failures++;
    this.emit();
  }

  onStatusChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  private emit(): void {
    for (const listener of [...this.listeners]) {
      try {
        listener();
      } catch {
        // A listener's failure must not break the peer; PeerList's listener never throws.
      }
    }
  }
}
