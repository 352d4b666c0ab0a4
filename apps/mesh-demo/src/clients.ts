import { setTimeout as sleep } from "node:timers/promises";
import {
  HttpOutbound,
  isOmniRelayError,
  jsonProcedure,
  type Logger,
  ResourceLeaseClient,
  type ResourceLeaseGrant,
  ResourceLeaseWorker,
  type UnaryOutbound,
} from "@omnirelay/core";
import { authenticated, type MeshAuth } from "./auth.js";
import { type CatalogOperation, type CatalogOperationRecord, parseCatalogOperation } from "./catalog.js";
import { type MeshDemoConfig, shardNamespace, shardOfCatalog } from "./config.js";
import { CATALOG_APPLY } from "./dispatcher-node.js";
import { FailoverOutbound, followingClient } from "./endpoints.js";
import { grpcOutbound } from "./grpc.js";
import {
  catalogPayload,
  LakehouseSimulation,
  MAINTENANCE_SCHEDULE_ID,
  maintenanceOperation,
  maintenanceSchedule,
  slotOperation,
} from "./seeder.js";

/** A running role that can be stopped. */
export interface RunningRole {
  close(): Promise<void>;
}

const decoder = new TextDecoder();

class InvalidPayloadError extends Error {
  readonly code = "mesh.demo.invalid_payload";
}

/** One `demo.catalog::apply` call: who sends which operation, and its cancellation. */
interface ApplyCall {
  readonly caller: string;
  readonly operation: CatalogOperation;
  readonly signal: AbortSignal;
}

/** Calls `demo.catalog::apply` on the dispatcher. */
async function applyOperation(outbound: UnaryOutbound, call: ApplyCall): Promise<CatalogOperationRecord> {
  const { caller, operation, signal } = call;
  const response = await outbound.call(jsonProcedure("apply"), {
    meta: {
      service: "resourcelease-mesh-demo",
      procedure: CATALOG_APPLY,
      transport: "http",
      encoding: "json",
      caller,
      headers: {},
      signal,
      deadline: Date.now() + 10_000,
    },
    message: { operation, peerId: caller },
  });
  return response.message as CatalogOperationRecord;
}

/**
 * The worker role: one `ResourceLeaseWorker` per shard (leases, heartbeats, completes), applying each catalog
 * operation to the mesh's catalog state on the dispatcher. A stale version (a newer one was applied first) is not a
 * failure: it completes as superseded, so it neither retries nor touches the worker's health; an unreadable body is
 * dead-lettered; anything else is retried. With a shared secret every call carries a token for its peer id.
 *
 * `--transport grpc` sends the queue calls (lease, heartbeat, complete, fail) over gRPC to `--grpc-url`; the apply
 * call is a custom JSON procedure, which only the HTTP transport carries, so it stays on `--rpc-url`.
 */
export async function startWorker(config: MeshDemoConfig & MeshAuth, logger: Logger): Promise<RunningRole> {
  const peerId = config.workerPeerId;
  const queueOutbound = async (): Promise<UnaryOutbound> => {
    if (config.transport !== "grpc") return new HttpOutbound({ url: config.rpcUrl });
    return grpcOutbound(config.grpcUrl as string);
  };
  const applyOutbound =
    config.log.kind === "jetstream"
      ? new FailoverOutbound(
          config.endpoints.map((url) => authenticated(new HttpOutbound({ url }), config.authSecret, peerId)),
        )
      : authenticated(new HttpOutbound({ url: config.rpcUrl }), config.authSecret, peerId);
  const outcomes: Record<string, number> = {};
  const [workMin, workMax] = config.workMs;
  const handler = async (item: ResourceLeaseGrant, context: { signal: AbortSignal }): Promise<void> => {
    let operation: CatalogOperation;
    try {
      const parsed = parseCatalogOperation(JSON.parse(decoder.decode(item.payload.body ?? new Uint8Array())));
      operation = slotOperation(parsed, item.payload.requestId);
    } catch (error) {
      throw new InvalidPayloadError(`invalid catalog payload: ${(error as Error).message}`);
    }
    await sleep(workMin + Math.floor(Math.random() * (workMax - workMin + 1)), undefined, { signal: context.signal });
    const record = await applyOperation(applyOutbound, { caller: peerId, operation, signal: context.signal });
    outcomes[record.outcome] = (outcomes[record.outcome] ?? 0) + 1;
    logger.debug({ resourceId: item.payload.resourceId, outcome: record.outcome }, "Applied a catalog operation.");
  };
  const outbounds = config.log.kind === "jetstream" ? [] : await Promise.all(config.shards.map(() => queueOutbound()));
  const workers = config.shards.map((shard, i) => {
    const namespace = shardNamespace(config, shard);
    return new ResourceLeaseWorker({
      client:
        config.log.kind === "jetstream"
          ? followingClient(config, { namespace, caller: peerId })
          : new ResourceLeaseClient({
              outbound: authenticated(outbounds[i] as UnaryOutbound, config.authSecret, peerId),
              namespace,
              caller: peerId,
            }),
      peerId,
      concurrency: config.workerConcurrency,
      leaseWaitMs: 2_000,
      handler,
      failOnError: (error) =>
        error instanceof InvalidPayloadError
          ? { requeue: false, reason: error.message, errorCode: error.code }
          : {
              requeue: true,
              reason: `worker exception: ${error instanceof Error ? error.message : String(error)}`,
              errorCode: "mesh.demo.failure",
            },
      onError: (event) => logger.debug({ err: event.error, operation: event.operation }, "Worker call failed."),
      logger,
    }).start();
  });
  const summary = setInterval(() => {
    const stats = workers.map((w) => w.stats());
    const sum = (k: "completed" | "failed" | "fenced" | "errors") => stats.reduce((n, s) => n + s[k], 0);
    logger.info(
      {
        transport: config.transport,
        completed: sum("completed"),
        failed: sum("failed"),
        fenced: sum("fenced"),
        errors: sum("errors"),
        outcomes,
      },
      "Worker progress.",
    );
  }, 30_000);
  summary.unref();
  const queueUrl =
    config.log.kind === "jetstream"
      ? config.endpoints.join(",")
      : config.transport === "grpc"
        ? config.grpcUrl
        : config.rpcUrl;
  logger.info(
    {
      peerId,
      shards: config.shards,
      transport: config.transport,
      queueUrl,
      applyUrl: config.log.kind === "jetstream" ? queueUrl : config.rpcUrl,
    },
    "Worker started.",
  );
  return {
    close: async () => {
      clearInterval(summary);
      await Promise.all(workers.map((w) => w.close({ graceMs: 3_000 })));
      await applyOutbound.close?.();
    },
  };
}

/**
 * Sets the maintenance cron schedule on its shard unless the shard already has it (the log keeps it: a restarted
 * seeder does not set it again, which would move its watermark). Retried every second until it succeeds or `signal`
 * aborts, so a seeder that starts before the dispatcher still sets it.
 */
async function ensureMaintenanceSchedule(client: ResourceLeaseClient, signal: AbortSignal, logger: Logger) {
  const wanted = maintenanceSchedule();
  while (!signal.aborted) {
    try {
      const current = (await client.listSchedules({ signal })).find((s) => s.id === MAINTENANCE_SCHEDULE_ID);
      if (current?.cron !== wanted.cron || current.backfill !== wanted.backfill) {
        await client.setSchedule(wanted, { signal });
      }
      logger.info({ schedule: MAINTENANCE_SCHEDULE_ID, cron: wanted.cron }, "Maintenance schedule in place.");
      return;
    } catch (error) {
      if (signal.aborted) return;
      logger.debug({ err: error }, "Setting the maintenance schedule failed; retrying.");
      await sleep(1_000, undefined, { signal }).catch(() => {});
    }
  }
}

/**
 * The seeder role: the lakehouse simulation enqueues one catalog operation per interval (90% of them the bulk
 * tenant's, 10% the interactive tenant's), to the shard of its catalog, with a requestId, and it puts the maintenance
 * cron schedule in place (a Vacuum every 10 s, fired by the shard itself). A refused enqueue (backpressure, dispatcher
 * down) is retried with the same requestId, so it is applied once when it finally gets through. With a shared secret
 * every call carries a `mesh-seeder` token.
 */
export function startSeeder(config: MeshDemoConfig & MeshAuth, logger: Logger): RunningRole {
  const simulation = new LakehouseSimulation();
  const clients = new Map(
    config.shards.map((shard) => [
      shard,
      config.log.kind === "jetstream"
        ? followingClient(config, {
            namespace: shardNamespace(config, shard),
            caller: "mesh-seeder",
            timeoutMs: 10_000,
          })
        : new ResourceLeaseClient({
            outbound: authenticated(new HttpOutbound({ url: config.rpcUrl }), config.authSecret, "mesh-seeder"),
            namespace: shardNamespace(config, shard),
            caller: "mesh-seeder",
            timeoutMs: 10_000,
          }),
    ]),
  );
  const stop = new AbortController();
  let enqueued = 0;
  let refused = 0;
  const loop = async () => {
    while (!stop.signal.aborted) {
      const operation = simulation.next();
      const client = clients.get(shardOfCatalog(config.shards, operation.catalog)) as ResourceLeaseClient;
      for (;;) {
        try {
          await client.enqueue(catalogPayload(operation), { signal: stop.signal });
          enqueued++;
          break;
        } catch (error) {
          if (stop.signal.aborted) return;
          refused++;
          const retryAfter = isOmniRelayError(error) ? Number(error.metadata.retryAfterMs ?? 1_000) : 1_000;
          logger.debug({ err: error, requestId: operation.requestId }, "Enqueue refused; retrying.");
          await sleep(Math.min(Math.max(retryAfter, 100), 5_000), undefined, { signal: stop.signal }).catch(() => {});
          if (stop.signal.aborted) return;
        }
      }
      await sleep(config.seederIntervalMs, undefined, { signal: stop.signal }).catch(() => {});
    }
  };
  const maintenanceShard = shardOfCatalog(config.shards, maintenanceOperation.catalog);
  const running = Promise.all([
    loop(),
    ensureMaintenanceSchedule(clients.get(maintenanceShard) as ResourceLeaseClient, stop.signal, logger),
  ]);
  const summary = setInterval(() => logger.info({ enqueued, refused }, "Seeder progress."), 30_000);
  summary.unref();
  logger.info(
    { rpcUrl: config.rpcUrl, endpoints: config.endpoints, intervalMs: config.seederIntervalMs },
    "Seeder started.",
  );
  return {
    close: async () => {
      clearInterval(summary);
      stop.abort();
      await running;
      await Promise.all([...clients.values()].map((c) => c.close()));
    },
  };
}
