import { type Logger, type PeerHealthSnapshotProvider, silentLogger } from "../contracts/health.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { type Clock, systemClock } from "../util/clock.js";
import { numberOption } from "../wire/options.js";
import type { Peer } from "./peer.js";
import type { PeerList } from "./peer-list.js";

/** A peer acquired for one call. */
export interface PeerLease {
  readonly peer: Peer;
  /** Gives the slot back, reporting whether the call succeeded. Only the first call has an effect. */
  release(success: boolean): void;
}

/** Options of {@link PeerChooser.acquire}. */
export interface PeerAcquireOptions {
  /** Aborts the wait for a peer. */
  readonly signal?: AbortSignal;
  /**
   * How long to wait, in ms from the call, for a peer to become available, eligible or free. `0` or absent:
   * fail at once.
   * @defaultValue none
   */
  readonly deadlineMs?: number;
}

/** Why candidates were skipped, counted since the chooser was created. */
export interface PeerRejections {
  /** Skipped because the health provider said the peer is not eligible. */
  readonly unhealthy: number;
  /** Skipped because the peer was at its concurrency limit. */
  readonly busy: number;
}

/** Picks a peer for an outbound call. */
export interface PeerChooser {
  /**
   * Acquires an available, healthy peer with a free slot.
   * @throws OmniRelayError `unavailable` `peers.none_registered` (empty list), `unavailable` `peers.none_available`,
   * `resource-exhausted` `peers.all_busy`, `deadline-exceeded` `peers.deadline_exceeded`, `cancelled`
   * `peers.cancelled`, `invalid-argument` `peers.argument_invalid` (bad `deadlineMs`).
   */
  acquire(options?: PeerAcquireOptions): Promise<PeerLease>;
  /** Skip counts by reason. */
  rejections(): PeerRejections;
}

/** Options shared by every chooser. */
export interface PeerChooserOptions {
  /** The peers to choose from. Required. */
  readonly peers: PeerList;
  /** Health filter; peers it calls ineligible are skipped. @defaultValue none (every peer is eligible) */
  readonly health?: PeerHealthSnapshotProvider;
  /** Random source in [0, 1). @defaultValue `Math.random` */
  readonly random?: () => number;
  /** Time source for deadlines and polls. @defaultValue `systemClock` */
  readonly clock?: Clock;
  /** Receives warnings (a throwing health provider). @defaultValue `silentLogger` */
  readonly logger?: Logger;
  /**
   * While waiting for a deadline, how often to re-check peers whose change is not signalled (health recovery).
   * @defaultValue 5
   */
  readonly pollIntervalMs?: number;
}

type Attempt = PeerLease | "none_available" | "all_busy";

/**
 * The acquire loop every chooser shares. A subclass only decides the order in which eligible, available
 * candidates are tried.
 */
export abstract class PeerChooserBase implements PeerChooser {
  protected readonly random: () => number;
  private readonly peerList: PeerList;
  private readonly health: PeerHealthSnapshotProvider | undefined;
  private readonly clock: Clock;
  private readonly logger: Logger;
  private readonly pollIntervalMs: number;
  private unhealthy = 0;
  private busy = 0;

  /** @throws OmniRelayError `invalid-argument` `resourcelease.options.invalid` for a missing `peers` or bad `pollIntervalMs`. */
  constructor(options: PeerChooserOptions) {
    if (!options || typeof options.peers?.peers !== "function") {
      throw OmniRelayError.invalidOption("peers", "Option 'peers' must be a PeerList.");
    }
    const poll = numberOption("pollIntervalMs", options.pollIntervalMs, { min: 0, aboveMin: true, fallback: 5 });
    this.peerList = options.peers;
    this.health = options.health;
    this.random = options.random ?? Math.random;
    this.clock = options.clock ?? systemClock;
    this.logger = options.logger ?? silentLogger;
    this.pollIntervalMs = poll;
  }

  /** Yields the candidates (all available and eligible) in the order they should be tried. */
  protected abstract order(candidates: readonly Peer[]): Iterable<Peer>;

  /** A random integer in [0, n). */
  protected randomIndex(n: number): number {
    const r = this.random();
    const i = Math.floor((Number.isFinite(r) ? r : 0) * n);
    return Math.min(n - 1, Math.max(0, i));
  }

  async acquire(options: PeerAcquireOptions = {}): Promise<PeerLease> {
    const { signal, deadlineMs } = options;
    if (deadlineMs !== undefined && (typeof deadlineMs !== "number" || Number.isNaN(deadlineMs) || deadlineMs < 0)) {
      throw new OmniRelayError({
        status: "invalid-argument",
        code: ErrorCodes.peers.argumentInvalid,
        message: "deadlineMs must be a number >= 0.",
        metadata: {
          field: "deadlineMs",
        },
      });
    }
    const deadlineAt = deadlineMs ? this.clock.now() + deadlineMs : undefined;
    for (;;) {
      if (signal?.aborted) throw abortError(signal);
      if (this.peerList.size === 0) {
        throw new OmniRelayError({
          status: "unavailable",
          code: ErrorCodes.peers.noneRegistered,
          message: "No peers are registered.",
        });
      }
      const attempt = this.attempt();
      if (typeof attempt === "object") return attempt;
      if (deadlineAt === undefined) {
        throw attempt === "all_busy"
          ? new OmniRelayError({
              status: "resource-exhausted",
              code: ErrorCodes.peers.allBusy,
              message: "All peers are busy.",
            })
          : new OmniRelayError({
              status: "unavailable",
              code: ErrorCodes.peers.noneAvailable,
              message: "No peers are currently available.",
            });
      }
      const remainingMs = deadlineAt - this.clock.now();
      if (remainingMs <= 0) {
        throw new OmniRelayError({
          status: "deadline-exceeded",
          code: ErrorCodes.peers.deadlineExceeded,
          message: "Peer acquisition deadline expired.",
          metadata: {
            deadlineMs: String(deadlineMs),
          },
        });
      }
      await this.waitForChange(Math.min(remainingMs, this.pollIntervalMs), signal);
    }
  }

  rejections(): PeerRejections {
    return { unhealthy: this.unhealthy, busy: this.busy };
  }

  private attempt(): Attempt {
    const candidates: Peer[] = [];
    for (const peer of this.peerList.peers()) {
      if (peer.status.state !== "available") continue;
      if (!this.isEligible(peer.id)) {
        this.unhealthy++;
        continue;
      }
      candidates.push(peer);
    }
    let sawBusy = false;
    for (const peer of this.order(candidates)) {
      if (peer.tryAcquire()) return lease(peer);
      this.busy++;
      sawBusy = true;
    }
    return sawBusy ? "all_busy" : "none_available";
  }

  private isEligible(peerId: string): boolean {
    if (!this.health) return true;
    try {
      return this.health.isPeerEligible(peerId);
    } catch (err) {
      // Fail open: a broken health provider must not take the whole mesh out of rotation.
      this.logger.warn({ err, peerId }, "peer health provider threw; treating the peer as eligible");
      return true;
    }
  }

  /** Resolves at the next peer-list change or after `delayMs`; rejects when `signal` aborts. */
  private waitForChange(delayMs: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const cleanup = () => {
        this.clock.clearTimeout(timer);
        cancelWake();
        signal?.removeEventListener("abort", onAbort);
      };
      const done = () => {
        cleanup();
        resolve();
      };
      const onAbort = () => {
        cleanup();
        reject(abortError(signal as AbortSignal));
      };
      const timer = this.clock.setTimeout(done, delayMs);
      const cancelWake = this.peerList.onNextChange(done);
      signal?.addEventListener("abort", onAbort, { once: true });
    });
  }
}

function lease(peer: Peer): PeerLease {
  let released = false;
  return {
    peer,
    release(success: boolean) {
      if (released) return;
      released = true;
      peer.release(success);
    },
  };
}

function abortError(signal: AbortSignal): OmniRelayError {
  const reason: unknown = signal.reason;
  if (reason instanceof Error && reason.name === "TimeoutError") {
    return new OmniRelayError({
      status: "deadline-exceeded",
      code: ErrorCodes.peers.deadlineExceeded,
      message: "Peer acquisition timed out.",
      cause: reason,
    });
  }
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.peers.cancelled,
    message: "Peer acquisition was cancelled.",
    cause: reason,
  });
}
