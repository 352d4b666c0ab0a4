import {
  HttpOutbound,
  OmniRelayError,
  ResourceLeaseClient,
  type ResourceLeaseOwnershipToken,
  ResourceLeaseWorker,
} from "@omnirelay/core";
import { type Command, commands, emit, pause } from "./lines.js";

/** Configuration of a drill worker (passed as JSON). */
export interface DrillWorkerConfig {
  readonly peerId: string;
  /** Dispatchers to lease from: one `ResourceLeaseWorker` each, all under this one peer id. */
  readonly urls: readonly string[];
  readonly concurrency: number;
  readonly workMs: number;
  /** The first `slowFirst` items take `slowMs` (so a drill can cut the worker off mid-work). @defaultValue 0 */
  readonly slowFirst?: number;
  readonly slowMs?: number;
}

interface Lost {
  readonly client: ResourceLeaseClient;
  readonly rid: string;
  readonly token: ResourceLeaseOwnershipToken;
}

/**
 * A worker peer for the drills: leases from each dispatcher, "works" for a while (stopping as soon as the lease's
 * AbortSignal fires), and reports every start, abort and finished handler on stdout. On `stale-complete` it tries to
 * complete every lease it lost with the old token, straight through the client, and reports what the server said.
 */
export async function runWorker(config: DrillWorkerConfig): Promise<void> {
  const lost: Lost[] = [];
  let started = 0;
  const workers = config.urls.map((url) => {
    const client = new ResourceLeaseClient({ outbound: new HttpOutbound({ url }), caller: config.peerId });
    const worker = new ResourceLeaseWorker({
      client,
      peerId: config.peerId,
      concurrency: config.concurrency,
      leaseWaitMs: 500,
      leaseRetry: { initialDelayMs: 50, maxDelayMs: 300 },
      handler: async (item, context) => {
        started++;
        const slow = started <= (config.slowFirst ?? 0);
        const rid = item.payload.resourceId;
        const ft = item.ownershipToken.fencingToken;
        emit({ t: "start", url, rid, ft, exp: item.leaseExpiresAt, slow });
        await pause(slow ? (config.slowMs ?? config.workMs) : config.workMs, context.signal);
        if (context.signal.aborted) {
          const reason = OmniRelayError.from(context.signal.reason);
          emit({ t: "abort", url, rid, ft, exp: context.leaseExpiresAt, code: reason.code });
          lost.push({ client, rid, token: item.ownershipToken });
          throw reason;
        }
        emit({ t: "done", url, rid, ft });
      },
    });
    return { client, worker: worker.start() };
  });
  emit({ t: "ready", peerId: config.peerId });

  await commands(async (command: Command) => {
    if (command.cmd !== "stale-complete") throw new Error(`unknown command ${command.cmd}`);
    for (const { client, rid, token } of lost) {
      const outcome = await lateComplete(client, token);
      emit({ t: "stale", rid, ft: token.fencingToken, ...outcome });
    }
    emit({ t: "stale-done", count: lost.length });
  });
  await Promise.all(workers.map(({ worker }) => worker.close({ graceMs: 200 })));
  process.exit(0);
}

/**
 * Completes with a lost lease's token, as a worker that missed the loss would: a transport failure (the link just came
 * back, a pooled connection is dead) is retried for up to 5 s; the server's answer is returned.
 */
async function lateComplete(
  client: ResourceLeaseClient,
  token: ResourceLeaseOwnershipToken,
): Promise<{ ok: boolean; code?: string; transientFailures: number }> {
  const deadline = Date.now() + 5_000;
  for (let failures = 0; ; failures++) {
    try {
      await client.complete(token, { timeoutMs: 1_000 });
      return { ok: true, transientFailures: failures };
    } catch (error) {
      const e = OmniRelayError.from(error);
      const transient = e.status === "unavailable" || e.status === "deadline-exceeded";
      if (!transient || Date.now() > deadline) return { ok: false, code: e.code, transientFailures: failures };
      await pause(200);
    }
  }
}
