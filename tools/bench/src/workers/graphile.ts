/**
 * graphile-worker processes of the benchmark: `producer` (addJob / addJobs through WorkerUtils) and `consumer`
 * (`run()` with a no-op task, with or without the localQueue / completeJobBatchDelay batching options).
 */
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import {
  childConfig,
  consumeCommands,
  type ItemOptions,
  itemOptions,
  jobData,
  measured,
  paced,
  pipelined,
  SMALL_TENANT,
  serve,
} from "../lib/child.js";
import { connectPg } from "../lib/pg.js";
import { nowMs, percentile } from "../lib/stats.js";

interface Config {
  readonly role: "producer" | "consumer";
  readonly connectionString: string;
}

const config = childConfig<Config>();
const logger = new Logger(() => () => undefined);
const TASK = "bench";

/**
 * A job's spec. graphile-worker has no per-tenant fairness (`queueName` serialises jobs, it does not share), so the
 * tenant rows give the small tenant's jobs priority -1 (lower runs first) and the large tenant's 0; a delay is `runAt`.
 */
function spec(o: ItemOptions) {
  return {
    ...(o.delayMs !== undefined ? { runAt: new Date(Date.now() + o.delayMs) } : {}),
    ...(o.tenant !== undefined ? { priority: o.tenant === SMALL_TENANT ? -1 : 0 } : {}),
  };
}
async function producerRole(): Promise<void> {
  const utils = await makeWorkerUtils({ connectionString: config.connectionString, logger, maxPoolSize: 24 });
  await utils.migrate();
  serve(
    {},
    {
      enqueue: async (a) => {
        const count = a.count as number;
        const batchSize = a.batchSize as number;
        const o = itemOptions(a);
        const start = performance.now();
        if (batchSize <= 1) {
          await pipelined(count, a.inFlight as number, () => utils.addJob(TASK, jobData(nowMs(), o.tenant), spec(o)));
        } else {
          const batches = Math.ceil(count / batchSize);
          await pipelined(batches, a.inFlight as number, (b) => {
            const n = Math.min(batchSize, count - b * batchSize);
            return utils.addJobs(
              Array.from({ length: n }, () => ({ identifier: TASK, payload: jobData(nowMs(), o.tenant), ...spec(o) })),
            );
          });
        }
        return { ms: performance.now() - start };
      },
      paced: async (a) => {
        const o = itemOptions(a);
        await paced(a.count as number, a.ratePerSec as number, () =>
          utils.addJob(TASK, jobData(nowMs(), o.tenant), spec(o)),
        );
        return {};
      },
      reset: async () => {
        await utils.withPgClient(async (c) => {
          await c.query("delete from graphile_worker._private_jobs");
          // What autovacuum does between bursts in a deployment (this machine's PostgreSQL runs with it off): without
          // it every scenario's deleted rows stay in the table and its indexes for the next scenario's scans to step
          // over. Not ANALYZE: the statistics of the emptied table misled the planner once a million jobs were in it.
          if (process.env.BENCH_GRAPHILE_VACUUM !== "off") await c.query("vacuum graphile_worker._private_jobs");
        });
        const r = await utils.withPgClient((c) =>
          c.query("select count(*)::int as n from graphile_worker._private_jobs"),
        );
        return { pending: (r.rows[0] as { n: number }).n };
      },
    },
    async () => {
      await utils.release();
    },
  );
}

async function consumerRole(): Promise<void> {
  const db = await connectPg(config.connectionString);
  serve(
    {},
    consumeCommands(async (a, control) => {
      const count = a.count as number;
      const concurrency = a.concurrency as number;
      const latencies: number[] = [];
      const start = performance.now();
      let completed = 0;
      let resolveDone!: () => void;
      const done = new Promise<void>((r) => {
        resolveDone = r;
      });
      const batching = a.batching === true;
      const runner = await run({
        connectionString: config.connectionString,
        concurrency,
        // PostgreSQL's 100 connections are shared by every consumer process and the producer's pool (24).
        maxPoolSize: Math.min(concurrency + 2, Math.floor(64 / ((a.processes as number | undefined) ?? 1)), 24),
        noHandleSignals: true,
        pollInterval: 1000,
        logger,
        taskList: {
          [TASK]: async (payload) => {
            const data = payload as { t: number; tenant?: string };
            if (measured(a, data)) latencies.push(nowMs() - data.t);
          },
        },
        ...(batching
          ? { preset: { worker: { localQueue: { size: 500 }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } } }
          : {}),
      });
      // "job:complete" fires when the handler finished, before completeJob's write (not awaited, batched or not):
      // wait for the handlers, then for the table to hold only what should remain.
      runner.events.on("job:complete", () => {
        completed++;
        if (a.shared) control.progress(completed);
        else if (completed >= count) resolveDone();
      });
      control.started();
      // Shared (one of several worker processes): until the parent has seen every handler done.
      await (a.shared ? control.ended : done);
      const remaining = (a.remaining as number | undefined) ?? 0;
      for (;;) {
        const r = await db.query("select count(*)::int as n from graphile_worker._private_jobs");
        if ((r.rows[0] as { n: number }).n <= remaining) break;
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      const ms = performance.now() - start;
      const doneAt = nowMs(); // before closing: a lifecycle ends at its last completion
      await runner.stop();
      return { ms, doneAt, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
    }),
    () => db.end(),
  );
}

await (config.role === "producer" ? producerRole() : consumerRole());
