import { ErrorCodes } from "../../errors/codes.js";
import { OmniRelayError } from "../../errors/omnirelay-error.js";

/** How long a client refused by the body budget is asked to wait (`Retry-After`, metadata `retryAfterMs`). */
export const BODY_BUDGET_RETRY_AFTER_MS = 1000;

/**
 * The bytes of request bodies an HTTP inbound holds while they arrive, across every connection: each body takes
 * its bytes as they are read and gives them all back when it is complete, refused or its client goes away. Bodies
 * are counted as they arrive, not as declared, so a `Content-Length` that is never sent holds nothing. Internal.
 */
export class BodyBudget {
  private used = 0;

  /** `limit`: the most bytes all bodies still arriving may hold together. */
  constructor(readonly limit: number) {}

  /** Bytes held now by bodies still arriving. */
  get inUse(): number {
    return this.used;
  }

  /** Whether `bytes` more would fit now (a body declared that long could be read). */
  fits(bytes: number): boolean {
    return this.used + bytes <= this.limit;
  }

  /** Takes `bytes` when they fit; `false` (nothing taken) when they do not. */
  take(bytes: number): boolean {
    if (!this.fits(bytes)) return false;
    this.used += bytes;
    return true;
  }

  /** Gives back `bytes` taken before. */
  release(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }

  /** The error a request over the budget is refused with. */
  exhausted(): OmniRelayError {
    return new OmniRelayError({
      status: "resource-exhausted",
      code: ErrorCodes.rpc.requestBodyBudgetExhausted,
      message: `The server is receiving ${this.limit} bytes of request bodies already; retry shortly.`,
      metadata: { limit: String(this.limit), retryAfterMs: String(BODY_BUDGET_RETRY_AFTER_MS) },
    });
  }
}
