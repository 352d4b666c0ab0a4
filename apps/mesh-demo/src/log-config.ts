import { UsageError } from "./config.js";

/** Where the dispatcher keeps its shards' logs. */
export type MeshLog =
  /** The default: one dispatcher, each shard's log in a SQLite file of `--data-dir`. */
  | { readonly kind: "sqlite" }
  /** `--log jetstream://host:port[,host:port…]`: the shards' logs on NATS JetStream, spread over dispatcher nodes. */
  | { readonly kind: "jetstream"; readonly servers: readonly string[] };

/** The options of the JetStream mode (`--log jetstream://…`); defaults when the log is SQLite. */
export interface MeshLogConfig {
  readonly log: MeshLog;
  /** `--nodes N`: dispatcher nodes `--mesh` starts (more than 1 needs the JetStream log). @defaultValue 1 (SQLite), 3 (JetStream) */
  readonly nodes: number;
  /** `--node-id ID`: this dispatcher node's id in the shard ownership keys. @defaultValue node-{rpc port} */
  readonly nodeId: string;
  /** `--endpoints LIST`: the dispatcher nodes' RPC URLs the seeder and workers follow. @defaultValue [rpcUrl] */
  readonly endpoints: readonly string[];
  /** `--ownership-ttl-ms MS`: how long a shard's ownership lasts without a renewal. @defaultValue 10000 */
  readonly ownershipTtlMs: number;
  /**
   * `--jetstream-prefix NAME`: the stream is `{NAME}_LOG` (subjects `mesh-demo.{NAME}.{shard}`), the KV buckets
   * `{NAME}_OWNERS`, `_MEMBERS`, `_PINS`, `_SNAPSHOTS`, `_DETERMINISTIC`. Two meshes with different prefixes share one
   * NATS without meeting. @defaultValue MESH_DEMO
   */
  readonly jetstreamPrefix: string;
}

/** The flags this file reads (they are declared with the others in config.ts). */
export interface MeshLogFlags {
  readonly log: string | undefined;
  readonly nodes: string | undefined;
  readonly nodeId: string | undefined;
  readonly endpoints: string | undefined;
  readonly ownershipTtlMs: string | undefined;
  readonly jetstreamPrefix: string | undefined;
}

function parseLog(text: string | undefined): MeshLog {
  const value = (text ?? "sqlite").trim();
  if (value === "sqlite") return { kind: "sqlite" };
  if (!value.startsWith("jetstream://")) {
    throw new UsageError(`--log must be sqlite or jetstream://host:port[,host:port], got '${value}'`);
  }
  const servers = value
    .slice("jetstream://".length)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (servers.length === 0 || servers.some((s) => !/^[A-Za-z0-9.[\]:-]+:\d{1,5}$/.test(s))) {
    throw new UsageError(`--log jetstream:// needs host:port of NATS servers, got '${value}'`);
  }
  return { kind: "jetstream", servers: servers.map((s) => `nats://${s}`) };
}

function httpOrigin(name: string, text: string): string {
  let parsed: URL;
  try {
    parsed = new URL(text);
  } catch {
    throw new UsageError(`--${name} must list http URLs, got '${text}'`);
  }
  if (parsed.protocol !== "http:") throw new UsageError(`--${name} must list http URLs, got '${text}'`);
  return parsed.origin;
}

/**
 * Reads the JetStream mode's flags.
 * @throws UsageError for anything invalid, or for `--nodes` above 1 without the JetStream log.
 */
export function parseLogConfig(flags: MeshLogFlags, rpcUrl: string): MeshLogConfig {
  const log = parseLog(flags.log);
  const nodesText = flags.nodes;
  const nodes = nodesText === undefined ? (log.kind === "jetstream" ? 3 : 1) : Number(nodesText);
  if (!Number.isSafeInteger(nodes) || nodes < 1 || nodes > 9) throw new UsageError("--nodes must be an integer 1-9");
  if (nodes > 1 && log.kind !== "jetstream") {
    throw new UsageError("--nodes above 1 needs --log jetstream://host:port (SQLite logs live in one process)");
  }
  const nodeId = flags.nodeId ?? `node-${new URL(rpcUrl).port || "80"}`;
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(nodeId)) throw new UsageError("--node-id must be letters, digits, '_' or '-'");
  const endpoints = (flags.endpoints ?? rpcUrl)
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "")
    .map((s) => httpOrigin("endpoints", s));
  if (endpoints.length === 0) throw new UsageError("--endpoints is empty");
  const ttlText = flags.ownershipTtlMs ?? "10000";
  const ownershipTtlMs = Number(ttlText);
  if (!Number.isSafeInteger(ownershipTtlMs) || ownershipTtlMs < 300) {
    throw new UsageError("--ownership-ttl-ms must be an integer >= 300");
  }
  const jetstreamPrefix = flags.jetstreamPrefix ?? "MESH_DEMO";
  if (!/^[A-Za-z0-9_-]{1,40}$/.test(jetstreamPrefix)) {
    throw new UsageError("--jetstream-prefix must be letters, digits, '_' or '-'");
  }
  return { log, nodes, nodeId, endpoints, ownershipTtlMs, jetstreamPrefix };
}
