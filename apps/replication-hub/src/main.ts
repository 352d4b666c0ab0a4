import { isOmniRelayError, LifecycleGroup } from "@omnirelay/core";
import { GrpcReplicationHub } from "@omnirelay/replicator-grpc";
import { parseHubConfig, usage } from "./config.js";
import { HubHttp } from "./http.js";
import { stderrLogger } from "./log.js";
import { SqliteReplicationHubStore } from "./sqlite-store.js";

async function main(): Promise<void> {
  const config = parseHubConfig(process.argv.slice(2), process.env);
  if (config.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const logger = stderrLogger();
  const store = new SqliteReplicationHubStore({
    dataDir: config.dataDir,
    durability: config.durability,
    maxSources: config.maxSources,
  });
  const hub = new GrpcReplicationHub({
    store,
    host: config.host,
    port: config.port,
    ...(config.tls ? { tls: config.tls } : {}),
    auth: config.auth,
    logger,
  });
  // The hub and its HTTP side start in order and drain together on a signal; a failed start stops both.
  const node = new LifecycleGroup({ logger }).addInbound(hub);
  const backupDir = config.backupDir;
  const http =
    config.httpPort >= 0
      ? new HubHttp(hub, {
          host: config.host,
          port: config.httpPort,
          ...(backupDir ? { backup: () => store.backup(backupDir) } : {}),
        })
      : undefined;
  if (http) node.addInbound(http);
  await node.start();
  process.stdout.write(
    `${JSON.stringify({ event: "listening", grpcPort: hub.port, httpPort: http?.port ?? null, sources: hub.sourceStatuses().length })}\n`,
  );
  const stop = () => {
    node.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

/** The code and metadata of an error and of its cause (e.g. a source's log refused as damaged), for the operator. */
function codesOf(error: unknown): Record<string, unknown> | undefined {
  if (!isOmniRelayError(error)) return undefined;
  const cause = codesOf(error.cause);
  return { code: error.code, metadata: error.metadata, ...(cause ? { cause } : {}) };
}

main().catch((error: unknown) => {
  process.stderr.write(`omnirelay-hub: ${error instanceof Error ? error.message : String(error)}\n`);
  // A failed start says which documented code stopped it: a source log refused as damaged reads
  // {"event":"failed","code":"resourcelease.replication.grpc.store_failed",…,"cause":{"code":"resourcelease.sqlite.corrupt",…}}.
  const codes = codesOf(error);
  if (codes) process.stderr.write(`${JSON.stringify({ event: "failed", ...codes })}\n`);
  process.exit(1);
});
