import { readFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { ErrorCodes, HttpOutbound, OmniRelayError, ResourceLeaseClient, type UnaryOutbound } from "@omnirelay/core";
import { type Command, InvalidArgumentError } from "commander";
import { usageError } from "./output.js";

/** The global options every command sees. */
export interface GlobalOptions {
  readonly url: string;
  readonly namespace: string;
  readonly transport: "http" | "grpc";
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly caller?: string;
  readonly token?: string;
  readonly timeoutMs: number;
  readonly json: boolean;
  readonly controlUrl?: string;
}

/** The global options of `command` (its own options merged with the program's). */
export function globals(command: Command): GlobalOptions {
  return command.optsWithGlobals() as GlobalOptions;
}

/** Whether `--namespace` was given on the command line or by env (not just its default). */
export function namespaceGiven(command: Command): boolean {
  let c: Command | null = command;
  while (c) {
    const source = c.getOptionValueSource("namespace");
    if (source !== undefined) return source !== "default";
    c = c.parent;
  }
  return false;
}

/** commander parser of a non-negative integer flag. */
export function intArg(min = 0): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min) {
      throw new InvalidArgumentError(`expected an integer >= ${min}.`);
    }
    return n;
  };
}

/** commander parser that collects a repeatable flag into a list. */
export function collect<T>(parse: (value: string) => T): (value: string, previous: T[] | undefined) => T[] {
  return (value, previous) => [...(previous ?? []), parse(value)];
}

function readPem(path: string | undefined, flag: string): Buffer | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path);
  } catch (error) {
    throw usageError(`cannot read ${flag} file '${path}': ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
}

function tlsOptions(g: GlobalOptions): { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined {
  const ca = readPem(g.ca, "--ca");
  const cert = readPem(g.cert, "--cert");
  const key = readPem(g.key, "--key");
  if (Boolean(cert) !== Boolean(key)) throw usageError("--cert and --key go together.");
  if (!ca && !cert) return undefined;
  return { ...(ca ? { ca } : {}), ...(cert ? { cert } : {}), ...(key ? { key } : {}) };
}

function authHeaders(g: GlobalOptions): Record<string, string> {
  return g.token ? { authorization: `Bearer ${g.token}` } : {};
}

function grpcAddress(url: string): { address: string; secure: boolean } {
  const m = /^(grpcs?|https?):\/\/([^/]+)\/?$/.exec(url.trim());
  if (m) return { address: m[2]!, secure: m[1] === "grpcs" || m[1] === "https" };
  if (url.includes("/")) throw usageError(`--url '${url}' is not a gRPC address (host:port or grpc://host:port).`);
  return { address: url.trim(), secure: false };
}

/** The gRPC transport is an optional peer: loaded only for `--transport grpc`, so HTTP use needs no grpc-js. */
const grpcPackage = "@omnirelay/transport-grpc";

type GrpcTransport = typeof import("@omnirelay/transport-grpc");

async function loadGrpcTransport(): Promise<GrpcTransport> {
  try {
    return (await import(grpcPackage)) as GrpcTransport;
  } catch (error) {
    const e = error as NodeJS.ErrnoException;
    const missing = e?.code === "ERR_MODULE_NOT_FOUND" && e.message.includes(`'${grpcPackage}'`);
    if (!missing) throw error;
    throw usageError(
      `${ErrorCodes.rpc.transportGrpcNotInstalled}: --transport grpc needs the package ${grpcPackage}, which is not ` +
        `installed. Install it next to @omnirelay/cli: npm install ${grpcPackage} (with -g if the CLI is global).`,
    );
  }
}

async function outbound(g: GlobalOptions): Promise<UnaryOutbound> {
  const tls = tlsOptions(g);
  const grpc = g.transport === "grpc" ? await loadGrpcTransport() : undefined;
  try {
    if (grpc) {
      const { address, secure } = grpcAddress(g.url);
      return new grpc.GrpcOutbound({
        address,
        defaultTimeoutMs: g.timeoutMs,
        ...(tls || secure ? { tls: tls ?? {} } : {}),
      });
    }
    return new HttpOutbound({ url: g.url, timeoutMs: g.timeoutMs, ...(tls ? { tls } : {}) });
  } catch (error) {
    if (error instanceof OmniRelayError && error.status === "invalid-argument") throw usageError(error.message);
    throw error;
  }
}

/** Opens a client for `namespace` (default: `--namespace`) over the chosen transport. */
export async function openClient(g: GlobalOptions, namespace = g.namespace): Promise<ResourceLeaseClient> {
  return new ResourceLeaseClient({
    outbound: await outbound(g),
    namespace,
    timeoutMs: g.timeoutMs,
    headers: authHeaders(g),
    ...(g.caller ? { caller: g.caller } : {}),
  });
}

/** Runs `fn` with a client and closes it afterwards. */
export async function withClient<T>(
  g: GlobalOptions,
  fn: (client: ResourceLeaseClient) => Promise<T>,
  namespace?: string,
): Promise<T> {
  const client = await openClient(g, namespace);
  try {
    return await fn(client);
  } finally {
    await client.close();
  }
}

/** The control-plane base URL: `--control-url`, or `--url` when the transport is HTTP. */
export function controlUrl(g: GlobalOptions): string {
  if (g.controlUrl) return g.controlUrl;
  if (g.transport === "http") return g.url;
  throw usageError("--control-url is required with --transport grpc.");
}

/**
 * GETs a control-plane endpoint and parses its JSON (`undefined` for 204). Errors are OmniRelayErrors: a refused
 * connection or timeout is `omnirelay.transport.unavailable` / `omnirelay.deadline_exceeded`, an error status keeps
 * the body's `code` (or `omnirelay.control.http_<status>`).
 */
export function getControlJson(g: GlobalOptions, base: string, path: string): Promise<unknown> {
  let url: URL;
  try {
    url = new URL(path, base.endsWith("/") ? base : `${base}/`);
  } catch {
    throw usageError(`invalid control-plane URL '${base}'.`);
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") throw usageError("the control-plane URL must be http(s).");
  const tls = url.protocol === "https:" ? tlsOptions(g) : undefined;
  const send = url.protocol === "https:" ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const req = send(
      url,
      { method: "GET", headers: { accept: "application/json", ...authHeaders(g) }, timeout: g.timeoutMs, ...tls },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", (e) => reject(unreachable(e)));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const status = res.statusCode ?? 500;
          let body: unknown;
          try {
            body = text ? JSON.parse(text) : undefined;
          } catch {
            body = undefined;
          }
          if (status === 204) return resolve(undefined);
          if (status >= 200 && status < 300 && body !== undefined) return resolve(body);
          const b = (body ?? {}) as { code?: unknown; message?: unknown };
          reject(
            new OmniRelayError({
              status: "unknown",
              code: typeof b.code === "string" ? b.code : `${ErrorCodes.controlPlane.httpPrefix}${status}`,
              message:
                typeof b.message === "string"
                  ? b.message
                  : `GET ${url.pathname} answered ${status} ${text.slice(0, 200)}`,
            }),
          );
        });
      },
    );
    req.on("timeout", () => {
      req.destroy();
      reject(
        new OmniRelayError({
          status: "deadline-exceeded",
          code: ErrorCodes.rpc.deadlineExceeded,
          message: `No answer from ${url.origin} within ${g.timeoutMs} ms.`,
        }),
      );
    });
    req.on("error", (e) => reject(unreachable(e)));
    req.end();
  });
}

function unreachable(cause: unknown): OmniRelayError {
  if (cause instanceof OmniRelayError) return cause;
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.rpc.transportUnavailable,
    message: `The control plane could not be reached: ${(cause as Error)?.message ?? String(cause)}`,
    cause,
  });
}
