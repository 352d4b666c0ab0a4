import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import { parseArgs } from "node:util";
import { GrpcReplicationHub, type ReplicationHubTlsOptions } from "@omnirelay/replicator-grpc";
import type { SqliteDurability } from "@omnirelay/replicator-sqlite";
import { startHubHttp } from "./http.js";
import { SqliteReplicationHubStore } from "./sqlite-store.js";

const usage = `omnirelay-hub: the OmniRelay replication hub (gRPC), storing one SQLite log per source.

  --data-dir <dir>        where the per-source logs live (required, or OMNIRELAY_HUB_DATA_DIR)
  --host <host>           gRPC and HTTP bind address (default 127.0.0.1)
  --port <n>              gRPC port (default 7950; 0 = any free port)
  --http-port <n>         health and metrics port (default 7951; 0 = any free port; -1 = off)
  --durability <mode>     sync | batched (default) | async — when an append counts as stored
  --tls-cert <file>       server certificate (PEM); with --tls-key enables TLS
  --tls-key <file>        server private key (PEM)
  --tls-ca <file>         CA for client certificates
  --require-client-cert   mutual TLS: refuse clients without a certificate signed by --tls-ca
  --backup-dir <dir>      enables POST /backup on the HTTP port: online backup of every source log into <dir>

On start it prints one JSON line: {"event":"listening","grpcPort":…,"httpPort":…,"sources":…}.
SIGTERM / SIGINT close it gracefully.`;

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      "data-dir": { type: "string" },
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "7950" },
      "http-port": { type: "string", default: "7951" },
      durability: { type: "string", default: "batched" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      "tls-ca": { type: "string" },
      "require-client-cert": { type: "boolean", default: false },
      "backup-dir": { type: "string" },
      help: { type: "boolean", default: false },
    },
  });
  if (values.help) {
    process.stdout.write(`${usage}\n`);
    return;
  }
  const dataDir = values["data-dir"] ?? process.env.OMNIRELAY_HUB_DATA_DIR;
  if (!dataDir) throw new Error("--data-dir is required");
  const durability = values.durability as SqliteDurability;
  if (!["sync", "batched", "async"].includes(durability)) throw new Error("--durability is sync, batched or async");
  let tls: ReplicationHubTlsOptions | undefined;
  if (values["tls-cert"] || values["tls-key"]) {
    if (!values["tls-cert"] || !values["tls-key"]) throw new Error("--tls-cert and --tls-key go together");
    tls = {
      cert: readFileSync(values["tls-cert"]),
      key: readFileSync(values["tls-key"]),
      ...(values["tls-ca"] ? { ca: readFileSync(values["tls-ca"]) } : {}),
      requireClientCertificate: values["require-client-cert"],
    };
  }
  const host = values.host;
  const store = new SqliteReplicationHubStore({ dataDir, durability });
  const backupDir = values["backup-dir"];
  const hub = new GrpcReplicationHub({
    store,
    host,
    port: Number(values.port),
    ...(tls ? { tls } : {}),
  });
  const { port } = await hub.start();
  let http: { server: Server; port: number } | undefined;
  const httpPort = Number(values["http-port"]);
  if (httpPort >= 0) {
    http = await startHubHttp(hub, {
      host,
      port: httpPort,
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
