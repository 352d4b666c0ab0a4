import { createPublicKey, createSecretKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { type ParseArgsConfig, parseArgs } from "node:util";
import type { JwtVerificationOptions } from "@omnirelay/core/middleware";
import type { ReplicationHubAuthOptions, ReplicationHubTlsOptions } from "@omnirelay/replicator-grpc";
import type { SqliteDurability } from "@omnirelay/replicator-sqlite";

export const usage = `omnirelay-hub: the OmniRelay replication hub (gRPC), storing one SQLite log per source.

  --data-dir <dir>        where the per-source logs live (required, or OMNIRELAY_HUB_DATA_DIR)
  --host <host>           gRPC and HTTP bind address (default 127.0.0.1)
  --port <n>              gRPC port (default 7950; 0 = any free port)
  --http-port <n>         health and metrics port (default 7951; 0 = any free port; -1 = off)
  --durability <mode>     sync | batched (default) | async — when an append counts as stored
  --max-sources <n>       most sources with a log (default 256; each costs a thread, ~16 MiB and 6 files); a hello
                          for a new source past it is refused with RESOURCE_EXHAUSTED; existing logs always open
  --tls-cert <file>       server certificate (PEM); with --tls-key enables TLS
  --tls-key <file>        server private key (PEM)
  --tls-ca <file>         CA for client certificates
  --require-client-cert   mutual TLS: refuse clients without a certificate signed by --tls-ca
  --backup-dir <dir>      enables POST /backup on the HTTP port: online backup of every source log into <dir>

Who may publish and read (a caller's names: its certificate's CN and SAN DNS/URI entries, a JWT's subject):
  --grant-publish <name>=<node>[,<node>…]     <name> may also publish as these node ids (* = any); repeatable
  --grant-subscribe <name>=<node>[,<node>…]   <name> may read these sources (* = all); repeatable
  --no-self-grant         a name equal to a node id no longer publishes as / reads it without a grant
  --jwt-secret-file <f>   verify bearer JWTs with this HMAC secret (a trailing newline is ignored;
                          needs TLS and --jwt-algorithms)
  --jwt-public-key <f>    verify bearer JWTs with this PEM public key (needs TLS and --jwt-algorithms)
  --jwt-algorithms <list> accepted algorithms, e.g. HS256 or ES256,RS256
  --jwt-issuer <iss>      required issuer;  --jwt-audience <aud>  required audience
  --allow-unauthenticated serve callers without an identity as trusted (loopback / test networks only);
                          required when the hub has neither --require-client-cert nor a JWT key
                          (or OMNIRELAY_HUB_ALLOW_UNAUTHENTICATED=1)

On start it prints one JSON line: {"event":"listening","grpcPort":…,"httpPort":…,"sources":…}.
Refused calls and conflicts are logged as JSON lines on stderr. SIGTERM / SIGINT close it gracefully.`;

/** Default of `--max-sources` (and of the store's `maxSources`). */
export const DEFAULT_MAX_SOURCES = 256;

/** What `omnirelay-hub` was asked to run. */
export interface HubConfig {
  readonly help: boolean;
  readonly dataDir: string;
  readonly host: string;
  readonly port: number;
  readonly httpPort: number;
  readonly durability: SqliteDurability;
  readonly maxSources: number;
  readonly backupDir: string | undefined;
  readonly tls: ReplicationHubTlsOptions | undefined;
  readonly auth: ReplicationHubAuthOptions;
}

/** The flags of `omnirelay-hub` (node:util parseArgs). */
const hubOptions = {
  "data-dir": { type: "string" },
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "string", default: "7950" },
  "http-port": { type: "string", default: "7951" },
  durability: { type: "string", default: "batched" },
  "max-sources": { type: "string", default: String(DEFAULT_MAX_SOURCES) },
  "tls-cert": { type: "string" },
  "tls-key": { type: "string" },
  "tls-ca": { type: "string" },
  "require-client-cert": { type: "boolean", default: false },
  "backup-dir": { type: "string" },
  "grant-publish": { type: "string", multiple: true, default: [] },
  "grant-subscribe": { type: "string", multiple: true, default: [] },
  "no-self-grant": { type: "boolean", default: false },
  "jwt-secret-file": { type: "string" },
  "jwt-public-key": { type: "string" },
  "jwt-algorithms": { type: "string" },
  "jwt-issuer": { type: "string" },
  "jwt-audience": { type: "string" },
  "allow-unauthenticated": { type: "boolean", default: false },
  help: { type: "boolean", default: false },
} satisfies NonNullable<ParseArgsConfig["options"]>;

/** String options whose value may be a negative number, given as the next argument (`--http-port -1`). */
const negativeValueOptions: ReadonlySet<string> = new Set(["http-port"]);

/**
 * Joins `--http-port -1` into `--http-port=-1`, which is how parseArgs takes a value starting with `-` (given apart it
 * refuses it as ambiguous). Walks the arguments as parseArgs does: a string option given without `=` takes the next
 * argument as its value, and nothing after `--` is an option; any other argument is left as it is.
 */
function joinNegativeValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const name = arg.startsWith("--") ? arg.slice(2) : "";
    const next = argv[i + 1];
    const takesValue = Object.hasOwn(hubOptions, name) && hubOptions[name as keyof typeof hubOptions].type === "string";
    if (!takesValue || next === undefined) {
      out.push(arg);
      continue;
    }
    out.push(...(negativeValueOptions.has(name) && /^-\d+$/.test(next) ? [`${arg}=${next}`] : [arg, next]));
    i++;
  }
  return out;
}

/**
 * Parses the command line (and `OMNIRELAY_HUB_*` variables).
 * @throws Error with a message naming the bad flag.
 */
export function parseHubConfig(argv: readonly string[], env: NodeJS.ProcessEnv): HubConfig {
  const { values } = parseArgs({
    args: joinNegativeValues(argv),
    options: hubOptions,
  });
  const help = values.help;
  const dataDir = values["data-dir"] ?? env.OMNIRELAY_HUB_DATA_DIR ?? "";
  if (!dataDir && !help) throw new Error("--data-dir is required");
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
  } else if (values["require-client-cert"]) {
    throw new Error("--require-client-cert needs --tls-cert, --tls-key and --tls-ca");
  }
  const jwt = jwtOptions(values);
  const allowUnauthenticated =
    values["allow-unauthenticated"] || ["1", "true"].includes(env.OMNIRELAY_HUB_ALLOW_UNAUTHENTICATED ?? "");
  if (!help && !allowUnauthenticated && !tls?.requireClientCertificate && jwt === undefined) {
    throw new Error(
      "no way to authenticate callers: use --require-client-cert (with --tls-ca) or a JWT key " +
        "(--jwt-secret-file / --jwt-public-key), or --allow-unauthenticated on a trusted network",
    );
  }
  return {
    help,
    dataDir,
    host: values.host,
    port: portNumber("--port", values.port, false),
    httpPort: portNumber("--http-port", values["http-port"], true),
    durability,
    maxSources: maxSources(values["max-sources"]),
    backupDir: values["backup-dir"],
    tls,
    auth: {
      allowUnauthenticated,
      selfGrant: !values["no-self-grant"],
      publishers: parseGrants("--grant-publish", values["grant-publish"]),
      subscribers: parseGrants("--grant-subscribe", values["grant-subscribe"]),
      ...(jwt ? { jwt } : {}),
    },
  };
}

/** A port flag's value: an integer from 0 to 65535, or -1 (off) where `off` allows it. */
function portNumber(flag: string, value: string, off: boolean): number {
  const n = /^-?\d{1,5}$/.test(value) ? Number(value) : Number.NaN;
  if ((n >= 0 && n <= 65_535) || (off && n === -1)) return n;
  throw new Error(`${flag} takes ${off ? "-1 (off) or " : ""}a port number from 0 to 65535, got '${value}'`);
}

/** `--max-sources`: an integer from 1 to 1,000,000 (a hub runs one writer thread per source). */
function maxSources(value: string): number {
  const n = /^\d{1,7}$/.test(value) ? Number(value) : Number.NaN;
  if (n >= 1 && n <= 1_000_000) return n;
  throw new Error(`--max-sources takes an integer from 1 to 1000000, got '${value}'`);
}

/** `name=a,b` flags into a grant table; a name given twice gets the union. */
function parseGrants(flag: string, entries: readonly string[]): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const entry of entries) {
    const eq = entry.lastIndexOf("=");
    const name = eq < 0 ? "" : entry.slice(0, eq).trim();
    const nodeIds =
      eq < 0
        ? []
        : entry
            .slice(eq + 1)
            .split(",")
            .map((n) => n.trim())
            .filter(Boolean);
    if (!name || nodeIds.length === 0) throw new Error(`${flag} takes <name>=<node>[,<node>…], got '${entry}'`);
    out[name] = [...new Set([...(out[name] ?? []), ...nodeIds])];
  }
  return out;
}

function jwtOptions(values: Record<string, unknown>): JwtVerificationOptions | undefined {
  const secretFile = values["jwt-secret-file"] as string | undefined;
  const publicKeyFile = values["jwt-public-key"] as string | undefined;
  if (secretFile === undefined && publicKeyFile === undefined) {
    for (const flag of ["jwt-algorithms", "jwt-issuer", "jwt-audience"]) {
      if (values[flag] !== undefined) throw new Error(`--${flag} needs --jwt-secret-file or --jwt-public-key`);
    }
    return undefined;
  }
  if (secretFile !== undefined && publicKeyFile !== undefined) {
    throw new Error("give one of --jwt-secret-file and --jwt-public-key");
  }
  const algorithms = String(values["jwt-algorithms"] ?? "")
    .split(",")
    .map((a) => a.trim())
    .filter(Boolean);
  // Unpinned algorithms let a token choose how it is checked; the hub's command line does not allow that.
  if (algorithms.length === 0) throw new Error("--jwt-algorithms is required with a JWT key (e.g. HS256, ES256)");
  const key =
    secretFile !== undefined
      ? createSecretKey(withoutTrailingNewline(readFileSync(secretFile)))
      : createPublicKey(readFileSync(publicKeyFile as string));
  const issuer = values["jwt-issuer"] as string | undefined;
  const audience = values["jwt-audience"] as string | undefined;
  return {
    key,
    algorithms,
    ...(issuer !== undefined ? { issuer } : {}),
    ...(audience !== undefined ? { audience } : {}),
  };
}

/** A secret written with `echo` ends in a newline that is not part of the secret. */
function withoutTrailingNewline(bytes: Buffer): Buffer {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x0a || bytes[end - 1] === 0x0d)) end--;
  if (end === 0) throw new Error("--jwt-secret-file is empty");
  return bytes.subarray(0, end);
}
