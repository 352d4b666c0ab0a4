import type { ResourceLeaseOwnershipToken } from "../contracts/payload.js";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { Clock, TimerHandle } from "../util/clock.js";
import { batchResultError } from "./errors.js";
import type { ResourceLeaseWorkerClient } from "./options.js";

/** Outcome of one completion: acknowledged, or the error the server or transport gave. Internal. */
export type CompleteOutcome = { readonly ok: true } | { readonly ok: false; readonly error: OmniRelayError };

interface Entry {
  readonly token: ResourceLeaseOwnershipToken;
  readonly resolve: (outcome: CompleteOutcome) => void;
}

/**
 * Largest batch sent in one `completeMany`: the most one lease call asks for (the queue's default `maxBatchSize`), so
 * the items of one lease are completed in one call, not split into a full batch and a remainder.
 */
const MAX_BATCH = 1000;

/**
 * Gathers completions that arrive within `batchMs` (0: within the same tick) and sends them as one `completeMany`
 * (or a plain `complete` when alone). `complete` never rejects. Internal.
 */
export class CompleteBatcher {
  private readonly client: ResourceLeaseWorkerClient;
  private readonly clock: Clock;
  private readonly batchMs: number;
  private pending: Entry[] = [];
  private timer: TimerHandle | undefined;
  private immediate: NodeJS.Immediate | undefined;

  constructor(options: { client: ResourceLeaseWorkerClient; clock: Clock; batchMs: number }) {
    this.client = options.client;
    this.clock = options.clock;
    this.batchMs = options.batchMs;
  }

  complete(token: ResourceLeaseOwnershipToken): Promise<CompleteOutcome> {
    return new Promise<CompleteOutcome>((resolve) => {
      this.pending.push({ token, resolve });
      if (this.pending.length >= MAX_BATCH) this.flush();
      else if (this.timer === undefined && this.immediate === undefined) {
        // A zero window still waits for the macrotask turn, so completions of the same tick share one call.
        if (this.batchMs > 0) this.timer = this.clock.setTimeout(() => this.flush(), this.batchMs);
        else this.immediate = setImmediate(() => this.flush());
      }
    });
  }

  /** Sends what is waiting now and stops the window timer. */
  flush(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
    while (this.pending.length > 0) {
      void this.send(this.pending.splice(0, MAX_BATCH));
    }
  }

  private async send(batch: Entry[]): Promise<void> {
    const only = batch.length === 1 ? batch[0] : undefined;
    if (only) {
      try {
        await this.client.complete(only.token);
        only.resolve({ ok: true });
      } catch (error) {
        only.resolve({ ok: false, error: OmniRelayError.from(error) });
      }
      return;
    }
    let results: Array<{ success: boolean; code?: string; message?: string }>;
    try {
      results = await this.client.completeMany(batch.map((e) => e.token));
    } catch (error) {
      const err = OmniRelayError.from(error);
      for (const e of batch) e.resolve({ ok: false, error: err });
      return;
    }
    for (const [i, e] of batch.entries()) {
      const r = Array.isArray(results) ? results[i] : undefined;
      if (r?.success === true) e.resolve({ ok: true });
      else if (r) e.resolve({ ok: false, error: batchResultError(r.code, r.message) });
      else {
        e.resolve({
          ok: false,
          error: new OmniRelayError({
            status: "internal",
            code: ErrorCodes.rpc.internal,
            message: "completeMany returned no result for the token.",
          }),
        });
      }
    }
  }
}
