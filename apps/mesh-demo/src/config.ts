import { hostname } from "node:os";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { type MeshLogConfig, parseLogConfig } from "./log-config.js";

/** The roles one process can take. */
export const MeshRoles = ["dispatcher", "diagnostics", "seeder", "worker"] as const;

/** One of {@link MeshRoles}. */
export type MeshRole = (typeof MeshRoles)[number];

const aliases: Readonly<Record<string, MeshRole>> = { diag: "diagnostics", diagnostic: "diagnostics" };

/** The transports a worker can call the queue with. */
export const WorkerTransports = ["http", "grpc"] as const;

/** One of {@link WorkerTransports}. */
export type WorkerTransport = (typeof WorkerTransports)[number];

/** Everything a mesh-demo process is configured with (flags, then `MESH_DEMO_*` environment variables). */
export interface MeshDemoConfig extends MeshLogConfig {
  /** `--mesh`: start the whole local mesh as child processes instead of taking roles. */
  readonly launch: boolean;
  /** `--netns` (with `--mesh`): each worker in a network namespace of its own, so its link can be cut. */
  readonly netns: boolean;
  readonly roles: ReadonlySet<MeshRole>;
  /** Where the dispatcher listens and where clients send RPCs. @defaultValue http://127.0.0.1:7420 */
  readonly rpcUrl: string;
  /** Where diagnostics (the page, /demo/*, /metrics, the control plane) listens. @defaultValue http://127.0.0.1:5158 */
  readonly httpUrl: string;
  /**
   * Where the dispatcher also serves the queue procedures over gRPC (plaintext h2c), written `http://host:port`. The
   * dispatcher opens no gRPC port without it; `--mesh` gives it one. @defaultValue undefined (role), http://127.0.0.1:7421 (--mesh)
   */
  readonly grpcUrl?: string;
  /** How a worker calls the queue: `http` to `rpcUrl`, or `grpc` to `grpcUrl`. @defaultValue http */
  readonly transport: WorkerTransport;
  /** Peer id of a worker. @defaultValue mesh-worker-{hostname} */
  readonly workerPeerId: string;
  /** SQLite files of the dispatcher. @defaultValue ./mesh-data */
  readonly dataDir: string;
  /** Queue namespace (shard namespaces are `{namespace}.{shard}` when there is more than one). @defaultValue resourcelease.mesh */
  readonly namespace: string;
  /** Shard names. @defaultValue ['lakehouse', 'governance'] */
  readonly shards: readonly string[];
  /** Delay between two seeder operations. @defaultValue 1000 */
  readonly seederIntervalMs: number;
  /** Lease duration of the queues. @defaultValue 30000 */
  readonly leaseDurationMs: number;
  /** Pending count that turns backpressure on. @defaultValue 64 */
  readonly highWatermark: number;
  /** Pending count that turns it off. @defaultValue 16 */
  readonly lowWatermark: number;
  /** How long a silent peer stays healthy. @defaultValue 10000 */
  readonly healthGraceMs: number;
  /** Simulated work per operation, [min, max] ms. @defaultValue [200, 600] */
  readonly workMs: readonly [number, number];
  /** Concurrent leases per worker and shard. @defaultValue 2 */
  readonly workerConcurrency: number;
  /** pino level. @defaultValue info */
  readonly logLevel: string;
  /** Most dead letters a shard keeps (the oldest are purged, and the purge is logged as an event). @defaultValue 10000 */
  readonly deadLetterMax: number;
  /**
   * File holding the mesh's shared secret: when set, the dispatcher refuses every RPC without a valid JWT signed with
   * it, and the seeder and workers mint their own. @defaultValue undefined (authentication off)
   */
  readonly authSecretFile?: string;
  /** `--mint-token SUBJECT`: print a token for SUBJECT (signed with the shared secret) and exit. */
  readonly mintToken?: string;
}

/** A configuration error: printed with the usage, exit code 2. */
export class UsageError extends Error {}

/** The usage text. */
export const usage = `usage: mesh-demo [--mesh] [--roles dispatcher,diagnostics,seeder,worker] [options]

  --mesh                    start a whole local mesh (dispatcher+diagnostics, a seeder, two workers: one over HTTP,
                            one over gRPC) as processes
  --netns                   with --mesh: run each worker in a network namespace of its own (needs root and
                            iproute2; env MESH_DEMO_NETNS=1), so tools/mesh-chaos.sh --partition can cut its link
  --roles LIST              roles of this process (env MESH_DEMO_ROLES); valid: ${MeshRoles.join(", ")}
  --rpc-url URL             dispatcher RPC URL (default http://127.0.0.1:7420)
  --http-url URL            diagnostics URL: live page, /demo/*, /metrics (default http://127.0.0.1:5158)
  --grpc-url URL            the dispatcher also serves the queue over gRPC at URL (http://host:port; --mesh: 7421)
  --transport http|grpc     how a worker calls the queue: HTTP to --rpc-url or gRPC to --grpc-url (default http)
  --worker-peer-id ID       worker peer id (default mesh-worker-<hostname>)
  --data-dir DIR            dispatcher SQLite files (default ./mesh-data)
  --namespace NS            queue namespace (default resourcelease.mesh)
  --shards LIST             shard names (default lakehouse,governance)
  --seeder-interval DUR     delay between seeded operations: 500ms, 2s or ms (default 1000ms)
  --lease-duration-ms MS    lease duration (default 30000)
  --high-watermark N        backpressure on at N pending (default 64)
  --low-watermark N         backpressure off at N pending (default 16)
  --health-grace-ms MS      a silent peer turns unhealthy after MS (default 10000)
  --work-ms MIN-MAX         simulated work per operation (default 200-600)
  --worker-concurrency N    leases in flight per worker and shard (default 2)
  --log-level LEVEL         pino level (default info)
  --dead-letter-max N       most dead letters a shard keeps; the oldest are purged (default 10000)
  --auth-secret-file FILE   turn on JWT auth: every RPC needs a token signed with the shared secret in FILE
                            (at least 32 bytes; env MESH_DEMO_AUTH_SECRET_FILE); every role mints its own
  --mint-token SUBJECT      print a token for SUBJECT (e.g. mesh-admin) signed with --auth-secret-file, and exit
  --log sqlite|jetstream://HOST:PORT[,HOST:PORT]
                            where the shards' logs live (env MESH_DEMO_LOG; default sqlite, files in --data-dir);
                            jetstream spreads the shards over dispatcher nodes on NATS JetStream
  --nodes N                 with --mesh and --log jetstream://: start N dispatcher nodes (default 3), on the ports
                            after --rpc-url's and --http-url's
  --node-id ID              this dispatcher node's id in the shard ownership keys (default node-<rpc port>)
  --endpoints LIST          dispatcher RPC URLs the seeder and workers follow (default --rpc-url)
  --ownership-ttl-ms MS     a shard moves this long after its owner stops renewing (default 10000)
  --jetstream-prefix NAME   names of the stream (NAME_LOG) and KV buckets (NAME_OWNERS, …) (default MESH_DEMO)

The dispatcher and diagnostics listen on the host of --rpc-url / --http-url: loopback (127.0.0.1) by default, so
other machines cannot reach them. Turn on --auth-secret-file before you give them another address.`;

const flagOptions = {
  mesh: { type: "boolean" },
  netns: { type: "boolean" },
  help: { type: "boolean", short: "h" },
  roles: { type: "string" },
  "rpc-url": { type: "string" },
  "http-url": { type: "string" },
  "grpc-url": { type: "string" },
  transport: { type: "string" },
  "worker-peer-id": { type: "string" },
  "data-dir": { type: "string" },
  namespace: { type: "string" },
  shards: { type: "string" },
  "seeder-interval": { type: "string" },
  "seeder-interval-ms": { type: "string" },
  "lease-duration-ms": { type: "string" },
  "high-watermark": { type: "string" },
  "low-watermark": { type: "string" },
  "health-grace-ms": { type: "string" },
  "work-ms": { type: "string" },
  "worker-concurrency": { type: "string" },
  "log-level": { type: "string" },
  "dead-letter-max": { type: "string" },
  "auth-secret-file": { type: "string" },
  "mint-token": { type: "string" },
  log: { type: "string" },
  nodes: { type: "string" },
  "node-id": { type: "string" },
  endpoints: { type: "string" },
  "ownership-ttl-ms": { type: "string" },
  "jetstream-prefix": { type: "string" },
} as const;

/** Flags the launcher forwards to its children unchanged. */
export const forwardedFlags = [
  "namespace",
  "shards",
  "seeder-interval",
  "seeder-interval-ms",
  "lease-duration-ms",
  "high-watermark",
  "low-watermark",
  "health-grace-ms",
  "work-ms",
  "worker-concurrency",
  "log-level",
  "dead-letter-max",
  "auth-secret-file",
  "log",
  "ownership-ttl-ms",
  "jetstream-prefix",
] as const;

/**
 * Parses roles from a comma list (case-insensitive; `diag` and `diagnostic` are aliases).
 * @throws UsageError naming the unknown role and listing the valid ones.
 */
export function parseRoles(text: string): Set<MeshRole> {
  const roles = new Set<MeshRole>();
  for (const raw of text.split(",")) {
    const name = raw.trim().toLowerCase();
    if (name === "") continue;
    const role = (MeshRoles as readonly string[]).includes(name) ? (name as MeshRole) : aliases[name];
    if (role === undefined) {
      throw new UsageError(`unknown role '${raw.trim()}'; valid roles: ${MeshRoles.join(", ")}`);
    }
    roles.add(role);
  }
  if (roles.size === 0) throw new UsageError(`no role given; valid roles: ${MeshRoles.join(", ")}`);
  return roles;
}

function int(name: string, text: string | undefined, bounds: { fallback: number; min: number }): number {
  const { fallback, min } = bounds;
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!Number.isSafeInteger(value) || value < min) throw new UsageError(`--${name} must be an integer >= ${min}`);
  return value;
}

/** Parses `500ms`, `2s`, `1.5s` or a bare number of milliseconds. */
export function parseDurationMs(name: string, text: string): number {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s)?\s*$/.exec(text);
  if (!match) throw new UsageError(`--${name} must be a duration such as 500ms or 2s`);
  const value = Number(match[1]) * (match[2] === "s" ? 1000 : 1);
  if (!Number.isFinite(value) || value < 10) throw new UsageError(`--${name} must be at least 10ms`);
  return Math.round(value);
}

function url(name: string, text: string): string {
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new UsageError(`--${name} must be an http URL, got '${text}'`);
  }
  if (parsed.protocol !== "http:") throw new UsageError(`--${name} must be an http URL, got '${text}'`);
  return parsed.origin;
}

const SHARD = /^[a-z0-9][a-z0-9-]{0,31}$/;

/**
 * Reads the configuration from argv and the environment.
 * @throws UsageError for anything invalid.
 */
export function parseConfig(argv: readonly string[], env: NodeJS.ProcessEnv): MeshDemoConfig {
  // pnpm hands a `--` through (`pnpm start -- --roles …`, and `pnpm mesh -- --http-url …` after the script's own
  // `--mesh`): drop it rather than stop parsing there. The program takes no positional arguments.
  const args = argv.filter((a) => a !== "--");
  let values: Record<string, string | boolean | undefined>;
  try {
    values = parseArgs({ args, options: flagOptions, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const str = (name: keyof typeof flagOptions, envName?: string): string | undefined => {
    const v = values[name];
    if (typeof v === "string") return v;
    return envName ? env[envName] : undefined;
  };
  if (values.help) throw new UsageError("");
  const launch = values.mesh === true;
  const authSecretText = str("auth-secret-file", "MESH_DEMO_AUTH_SECRET_FILE");
  if (authSecretText !== undefined && authSecretText.trim() === "") throw new UsageError("--auth-secret-file is empty");
  const authSecretFile = authSecretText === undefined ? undefined : resolve(authSecretText);
  const mintToken = str("mint-token");
  if (mintToken !== undefined) {
    if (mintToken.trim() === "") throw new UsageError("--mint-token needs a subject, e.g. --mint-token mesh-admin");
    if (authSecretFile === undefined) throw new UsageError("--mint-token needs --auth-secret-file");
    if (launch || values.roles !== undefined) throw new UsageError("--mint-token takes no roles and no --mesh");
  }
  const rolesText = str("roles", "MESH_DEMO_ROLES");
  const roles = launch || mintToken !== undefined ? new Set<MeshRole>() : parseRoles(rolesText ?? MeshRoles.join(","));
  if (roles.has("diagnostics") && !roles.has("dispatcher")) {
    throw new UsageError("the diagnostics role needs the dispatcher role in the same process");
  }
  const shards = (str("shards", "MESH_DEMO_SHARDS") ?? "lakehouse,governance")
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (shards.length === 0 || shards.some((s) => !SHARD.test(s)) || new Set(shards).size !== shards.length) {
    throw new UsageError("--shards must be distinct names of lowercase letters, digits and '-'");
  }
  const intervalText = str("seeder-interval-ms") ?? str("seeder-interval", "MESH_DEMO_SEEDER_INTERVAL");
  const highWatermark = int("high-watermark", str("high-watermark"), { fallback: 64, min: 1 });
  const lowWatermark = int("low-watermark", str("low-watermark"), {
    fallback: Math.min(16, Math.floor(highWatermark / 2)),
    min: 0,
  });
  if (lowWatermark >= highWatermark) throw new UsageError("--low-watermark must be below --high-watermark");
  const workText = str("work-ms") ?? "200-600";
  const work = /^(\d+)(?:-(\d+))?$/.exec(workText);
  if (!work) throw new UsageError("--work-ms must be MIN-MAX or MS");
  const workMin = Number(work[1]);
  const workMax = Number(work[2] ?? work[1]);
  if (workMax < workMin) throw new UsageError("--work-ms MAX must be >= MIN");
  const namespace = str("namespace", "MESH_DEMO_NAMESPACE") ?? "resourcelease.mesh";
  const transport = (str("transport", "MESH_DEMO_TRANSPORT") ?? "http").trim().toLowerCase();
  if (!(WorkerTransports as readonly string[]).includes(transport)) {
    throw new UsageError(`--transport must be one of ${WorkerTransports.join(", ")}`);
  }
  const grpcText = str("grpc-url", "MESH_DEMO_GRPC_URL");
  const grpcUrl = grpcText === undefined ? undefined : url("grpc-url", grpcText);
  if (transport === "grpc" && grpcUrl === undefined && roles.has("worker")) {
    throw new UsageError("--transport grpc needs --grpc-url (where the dispatcher serves gRPC)");
  }
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$/.test(namespace)) throw new UsageError("--namespace is not a valid name");
  const rpcUrl = url("rpc-url", str("rpc-url", "MESH_DEMO_RPC_URL") ?? "http://127.0.0.1:7420");
  const logConfig = parseLogConfig(
    {
      log: str("log", "MESH_DEMO_LOG"),
      nodes: str("nodes"),
      nodeId: str("node-id", "MESH_DEMO_NODE_ID"),
      endpoints: str("endpoints", "MESH_DEMO_ENDPOINTS"),
      ownershipTtlMs: str("ownership-ttl-ms"),
      jetstreamPrefix: str("jetstream-prefix", "MESH_DEMO_JETSTREAM_PREFIX"),
    },
    rpcUrl,
  );
  const netns = values.netns === true || env.MESH_DEMO_NETNS === "1";
  if (netns && (!launch || logConfig.log.kind !== "sqlite")) {
    throw new UsageError("--netns goes with --mesh on the SQLite log (the default --log)");
  }
  if (logConfig.log.kind === "jetstream" && transport === "grpc") {
    throw new UsageError("--transport grpc is not available with --log jetstream:// (the nodes serve HTTP)");
  }
  return {
    ...logConfig,
    launch,
    netns,
    roles,
    rpcUrl,
    httpUrl: url("http-url", str("http-url", "MESH_DEMO_HTTP_URL") ?? "http://127.0.0.1:5158"),
    ...(grpcUrl !== undefined ? { grpcUrl } : {}),
    transport: transport as WorkerTransport,
    workerPeerId: str("worker-peer-id", "MESH_DEMO_WORKER_PEER_ID") ?? `mesh-worker-${hostname()}`,
    dataDir: resolve(str("data-dir", "MESH_DEMO_DATA_DIR") ?? "mesh-data"),
    namespace,
    shards,
    seederIntervalMs: intervalText === undefined ? 1000 : parseDurationMs("seeder-interval", intervalText),
    leaseDurationMs: int("lease-duration-ms", str("lease-duration-ms"), { fallback: 30_000, min: 100 }),
    highWatermark,
    lowWatermark,
    healthGraceMs: int("health-grace-ms", str("health-grace-ms"), { fallback: 10_000, min: 100 }),
    workMs: [workMin, workMax],
    workerConcurrency: int("worker-concurrency", str("worker-concurrency"), { fallback: 2, min: 1 }),
    logLevel: str("log-level", "MESH_DEMO_LOG_LEVEL") ?? "info",
    deadLetterMax: int("dead-letter-max", str("dead-letter-max"), { fallback: 10_000, min: 0 }),
    ...(authSecretFile !== undefined ? { authSecretFile } : {}),
    ...(mintToken !== undefined ? { mintToken: mintToken.trim() } : {}),
  };
}

/** The `host:port` a gRPC channel dials for a `--grpc-url` (`http://127.0.0.1:7421` → `127.0.0.1:7421`). */
export function grpcAddress(grpcUrl: string): string {
  const u = new URL(grpcUrl);
  return `${u.hostname}:${u.port || 80}`;
}

/** The queue namespace of a shard. */
export function shardNamespace(config: Pick<MeshDemoConfig, "namespace" | "shards">, shard: string): string {
  return config.shards.length === 1 ? config.namespace : `${config.namespace}.${shard}`;
}

/** The shard a catalog's operations go to (stable across processes). */
export function shardOfCatalog(shards: readonly string[], catalog: string): string {
  let hash = 0;
  for (const ch of catalog) hash = (hash * 31 + ch.charCodeAt(0)) >>> 0;
  return shards[hash % shards.length] as string;
}

/** True for a host only this machine can reach (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return host === "localhost" || host === "::1" || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/**
 * What the dispatcher's startup output says about who can reach it: loopback only (the default) or not, and whether
 * JWT authentication is on. A dispatcher beyond loopback without authentication is a warning. `httpUrl` counts only
 * when the process serves it (the diagnostics role), `grpcUrl` only when the dispatcher serves gRPC.
 */
export function exposureNotice(config: {
  readonly rpcUrl: string;
  readonly httpUrl?: string | undefined;
  readonly grpcUrl?: string | undefined;
  readonly authSecretFile?: string | undefined;
}): { level: "info" | "warn"; message: string } {
  const urls = [config.rpcUrl, config.httpUrl, config.grpcUrl].filter((u): u is string => u !== undefined);
  const hosts = [...new Set(urls.map((url) => new URL(url).hostname))];
  const loopback = hosts.every(isLoopbackHost);
  const auth = config.authSecretFile !== undefined;
  const where = loopback
    ? `Listening on loopback only (${hosts.join(", ")}): other machines cannot reach it.`
    : `Listening beyond loopback (${hosts.join(", ")}): other machines can reach it.`;
  const how = auth
    ? "JWT authentication is on: every RPC needs a token signed with the shared secret."
    : "Authentication is off: anyone who reaches the RPC port can enqueue, lease and drain; --auth-secret-file turns JWT auth on.";
  return { level: !loopback && !auth ? "warn" : "info", message: `${where} ${how}` };
}
