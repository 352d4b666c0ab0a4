import type {
  Logger,
  ResourceLeaseBackpressureListener,
  ResourceLeaseBackpressureSignal,
} from "../contracts/health.js";
import { silentLogger } from "../contracts/health.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { BackpressureAwareRateLimiter } from "./backpressure-aware-rate-limiter.js";

/** Options of {@link RateLimitingBackpressureListener}. */
export interface RateLimitingBackpressureListenerOptions {
  /** Receives the activation (warn) and clear (info) messages. @defaultValue `silentLogger` */
  readonly logger?: Logger;
}

/**
 * Switches a {@link BackpressureAwareRateLimiter} on backpressure transitions, and logs each change once: a warning
 * on activation, an info line when it clears. Repeated signals with the same state are not logged.
 */
export class RateLimitingBackpressureListener implements ResourceLeaseBackpressureListener {
  private readonly limiter: Pick<BackpressureAwareRateLimiter<unknown>, "setBackpressure">;
  private readonly logger: Logger;

  /**
   * Creates a listener that toggles `limiter`.
   * @throws OmniRelayError `invalid-argument` / `resourcelease.options.invalid` (metadata `option: limiter`) when
   * `limiter` has no `setBackpressure` method.
   */
  // biome-ignore lint/suspicious/noExplicitAny: the listener never reads the limiter's metadata type.
  constructor(limiter: BackpressureAwareRateLimiter<any>, options: RateLimitingBackpressureListenerOptions = {}) {
    if (typeof limiter?.setBackpressure !== "function") {
      throw OmniRelayError.invalidOption("limiter", "A BackpressureAwareRateLimiter is required.");
    }
    this.limiter = limiter;
    this.logger = options.logger ?? silentLogger;
  }

  /** Applies the signal's state to the limiter and logs when that changed the limiter's state. */
  onBackpressureChanged(signal: ResourceLeaseBackpressureSignal): void {
    if (!this.limiter.setBackpressure(signal.isActive)) return;
    const fields = {
      eventId: signal.isActive ? 1 : 2,
      pendingCount: signal.pendingCount,
      highWatermark: signal.highWatermark,
      lowWatermark: signal.lowWatermark,
    };
    if (signal.isActive) {
      this.logger.warn(
        fields,
        `Resource lease backpressure activated: ${signal.pendingCount} pending (high watermark ${signal.highWatermark}).`,
      );
    } else {
      this.logger.info(fields, `Resource lease backpressure cleared at ${signal.pendingCount} pending items.`);
    }
  }
}
