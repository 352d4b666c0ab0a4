import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";

/** One enqueue's result as the client reports it. Internal. */
export interface CoalescedEnqueueResult {
  readonly sequenceId: number;
  readonly duplicate: boolean;
  readonly stats: { pendingCount: number; activeLeaseCount: number };
}

interface Entry {
  /** The payload as its wire JSON (encoded by the caller, so a payload that cannot be encoded fails alone). */
  readonly payload: unknown;
  readonly resolve: (result: CoalescedEnqueueResult) => void;
  readonly reject: (error: unknown) => void;
}

/** How the coalescer sends: a batch (all or none) and a single item. Internal. */
export interface EnqueueSender {
  many(payloads: readonly unknown[]): Promise<{
    sequenceIds: readonly number[];
    duplicates: readonly boolean[];
    stats: { pendingCount: number; activeLeaseCount: number };
  }>;
  one(payload: unknown): Promise<CoalescedEnqueueResult>;
}

/**
 * Gathers `enqueue` calls of one event-loop turn into one batched RPC (at most `maxBatch` items each). The server
 * enqueues a batch all or none, so when it refuses one as a whole for a reason that may concern only some of its
 * items (invalid-argument: a bad item; resource-exhausted: capacity), the items are sent again one by one and each
 * call gets the answer it would have had alone. Transport failures reach every call of the batch. Internal.
 */
export class EnqueueCoalescer {
  private pending: Entry[] = [];
  private immediate: NodeJS.Immediate | undefined;
  private readonly sending = new Set<Promise<void>>();

  constructor(
    private readonly sender: EnqueueSender,
    private readonly maxBatch: number,
  ) {}

  enqueue(payload: unknown): Promise<CoalescedEnqueueResult> {
    return new Promise<CoalescedEnqueueResult>((resolve, reject) => {
      this.pending.push({ payload, resolve, reject });
      if (this.pending.length >= this.maxBatch) this.flush();
      else this.immediate ??= setImmediate(() => this.flush());
    });
  }

  /** Sends whatever is waiting. */
  flush(): void {
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.immediate = undefined;
    while (this.pending.length > 0) {
      const sent: Promise<void> = this.send(this.pending.splice(0, this.maxBatch)).finally(() =>
        this.sending.delete(sent),
      );
      this.sending.add(sent);
    }
  }

  /** Sends whatever is waiting and resolves when every batch sent so far has its answer. */
  async settle(): Promise<void> {
    this.flush();
    while (this.sending.size > 0) await Promise.all(this.sending);
  }

  private async send(batch: readonly Entry[]): Promise<void> {
    if (batch.length === 1) {
      const only = batch[0] as Entry;
      await this.sender.one(only.payload).then(only.resolve, only.reject);
      return;
    }
    try {
      const r = await this.sender.many(batch.map((e) => e.payload));
      for (const [i, e] of batch.entries()) {
        const sequenceId = r.sequenceIds[i];
        if (typeof sequenceId !== "number") {
          e.reject(
            new OmniRelayError({
              status: "internal",
              code: ErrorCodes.rpc.internal,
              message: "The batched enqueue returned no sequence id for this item.",
            }),
          );
        } else {
          e.resolve({ sequenceId, duplicate: r.duplicates[i] === true, stats: r.stats });
        }
      }
    } catch (thrown) {
      const error = OmniRelayError.from(thrown);
      if (error.status === "invalid-argument" || error.status === "resource-exhausted") {
        await Promise.all(batch.map((e) => this.sender.one(e.payload).then(e.resolve, e.reject)));
        return;
      }
      for (const e of batch) e.reject(error);
    }
  }
}
