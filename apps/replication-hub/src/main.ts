import type { Server } from "node:http";
import { GrpcReplicationHub } from "@omnirelay/replicator-grpc";
import { parseHubConfig, usage } from "./config.js";
import { startHubHttp } from "./http.js";
import { stderrLogger } from "./log.js";
import { SqliteReplicationHubStore } from "./sqlite-store.js";

async function main(): Promise<void> {
  const config = parseHubConfig(process.argv.slice(2), process.env);
  if (config.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const store = new SqliteReplicationHubStore({ dataDir: config.dataDir, durability: config.durability });
  const hub = new GrpcReplicationHub({
    store,
    host: config.host,
    port: config.port,
    ...(config.tls ? { tls: config.tls } : {}),
    auth: config.auth,
    logger: stderrLogger(),
  });
  const { port } = await hub.start();
  let http: { server: Server; port: number } | undefined;
  if (config.httpPort >= 0) {
    const backupDir = config.backupDir;
    http = await startHubHttp(hub, {
      host: config.host,
      port: config.httpPort,
      ...(backupDir ? { backup: () => store.backup(backupDir) } : {}),
    });
  }
  process.stdout.write(
    `${JSON.stringify({ event: "listening", grpcPort: port, httpPort: http?.port ?? null, sources: hub.sourceStatuses().length })}\n`,
  );
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    http?.server.close();
    hub.close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`omnirelay-hub: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
