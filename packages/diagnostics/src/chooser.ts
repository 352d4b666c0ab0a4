import { isOmniRelayError } from "@omnirelay/core";
import type { PeerAcquireOptions, PeerChooser, PeerLease, PeerRejections } from "@omnirelay/core/peers";

/**
 * A {@link PeerChooser} that reports each `acquire` outcome — `acquired`, or the reason no peer was chosen (the
 * suffix of the `peers.*` error code: `none_available`, `all_busy`, …) — and otherwise behaves exactly as the chooser
 * it wraps. Made by `ResourceLeaseControlPlane.trackPeerChooser`.
 */
export class TrackedPeerChooser implements PeerChooser {
  /** @param report receives every outcome; it must not throw (the control plane's never does). */
  constructor(
    private readonly inner: PeerChooser,
    private readonly report: (outcome: string) => void,
  ) {}

  /** Acquires through the wrapped chooser and counts the outcome. Rejects exactly as the wrapped chooser does. */
  async acquire(options?: PeerAcquireOptions): Promise<PeerLease> {
    try {
      const lease = await this.inner.acquire(options);
      this.report("acquired");
      return lease;
    } catch (error) {
      const code = isOmniRelayError(error) ? error.code : "";
      this.report(code.startsWith("peers.") ? code.slice("peers.".length) : "error");
      throw error;
    }
  }

  /** The wrapped chooser's skip counts. */
  rejections(): PeerRejections {
    return this.inner.rejections();
  }
}
