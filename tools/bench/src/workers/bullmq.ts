/** BullMQ processes of the benchmark: `producer` (Queue.add / addBulk) and `consumer` (a Worker with a no-op processor). */
import { Queue, Worker } from "bullmq";
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
import { nowMs, percentile } from "../lib/stats.js";

interface Config {
  readonly role: "producer" | "consumer";
  readonly port: number;
}

const config = childConfig<Config>();
const connection = { host: "127.0.0.1", port: config.port, maxRetriesPerRequest: null };
const QUEUE = "bench";
const jobOptions = { removeOnComplete: true, removeOnFail: true };

/**
 * A job's options. BullMQ (open source) has no per-tenant fairness (groups are BullMQ Pro), so the tenant rows give
 * the small tenant's jobs the higher priority (1) and the large tenant's priority 2: what a BullMQ user would do.
 */
function options(o: ItemOptions) {
  const priority = o.tenant === undefined ? undefined : o.tenant === SMALL_TENANT ? 1 : 2;
  return {
    ...jobOptions,
    ...(o.delayMs !== undefined ? { delay: o.delayMs } : {}),
    ...(priority !== undefined ? { priority } : {}),
  };
}
async function producerRole(): Promise<void> {
  const queue = new Queue(QUEUE, { connection });
  await queue.waitUntilReady();
  serve(
    {},
    {
      enqueue: async (a) => {
        const count = a.count as number;
        const batchSize = a.batchSize as number;
        const o = itemOptions(a);
        const opts = options(o);
        const start = performance.now();
        if (batchSize <= 1) {
          await pipelined(count, a.inFlight as number, () => queue.add("j", jobData(nowMs(), o.tenant), opts));
        } else {
          const batches = Math.ceil(count / batchSize);
          await pipelined(batches, a.inFlight as number, (b) => {
            const n = Math.min(batchSize, count - b * batchSize);
            return queue.addBulk(
              Array.from({ length: n }, () => ({ name: "j", data: jobData(nowMs(), o.tenant), opts })),
            );
          });
        }
        return { ms: performance.now() - start };
      },
      paced: async (a) => {
        const o = itemOptions(a);
        await paced(a.count as number, a.ratePerSec as number, () =>
          queue.add("j", jobData(nowMs(), o.tenant), options(o)),
        );
        return {};
      },
      reset: async () => {
        await queue.obliterate({ force: true });
        return { pending: await queue.count() };
      },
    },
    () => queue.close(),
  );
}

async function consumerRole(): Promise<void> {
  serve(
    {},
    consumeCommands(async (a, control) => {
      const count = a.count as number;
      const latencies: number[] = [];
      const start = performance.now();
      let completed = 0;
      let resolveDone!: () => void;
      const done = new Promise<void>((r) => {
        resolveDone = r;
      });
      const worker = new Worker(
        QUEUE,
        async (job) => {
          const data = job.data as { t: number; tenant?: string };
          if (measured(a, data)) latencies.push(nowMs() - data.t);
        },
        { connection, concurrency: a.concurrency as number, removeOnComplete: { count: 0 }, autorun: false },
      );
      worker.on("completed", () => {
        completed++;
        if (a.shared) control.progress(completed);
        else if (completed >= count) resolveDone();
      });
      worker.on("error", () => undefined);
      void worker.run();
      await worker.waitUntilReady();
      control.started();
      // Shared (one of several worker processes): until the parent has seen every item completed.
      await (a.shared ? control.ended : done);
      const ms = performance.now() - start;
      const doneAt = a.shared ? control.lastAt() : nowMs(); // before closing: a lifecycle ends at its last completion
      await worker.close();
      return { ms, doneAt, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
    }),
    async () => undefined,
  );
}

await (config.role === "producer" ? producerRole() : consumerRole());
