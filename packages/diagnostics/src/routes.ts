import type { IncomingMessage, ServerResponse } from "node:http";
import { ErrorCodes, OmniRelayError, type ResourceLeaseQueueStats } from "@omnirelay/core";
import type { ResourceLeaseBackpressureSignal } from "@omnirelay/core/backpressure";
import {
  type PeerHealthSnapshotProvider,
  PeerLeaseHealthDiagnostics,
  type PeerLeaseHealthSnapshot,
} from "@omnirelay/core/peers";
import type { ResourceLeaseKeyStats } from "@omnirelay/core/wire";
import type { Registry } from "prom-client";
import type { ControlPlaneAuthenticator } from "./auth.js";
import { type BackpressureEventStream, toJson } from "./backpressure-stream.js";
import { readJsonObject, sendError, sendJson } from "./http.js";
import { assertJsonContentType, assertSameOrigin } from "./origin.js";
import type { RuntimeToggles } from "./toggles.js";

/** One row of `/omnirelay/control/replication/checkpoint`. */
export interface ReplicationCheckpointRow {
  readonly sink: string;
  readonly shard: string;
  readonly lastSequence?: number;
  readonly lagMs?: number;
  readonly queueLastEventSequence?: number;
  readonly behindEvents?: number;
  /** Why the checkpoint could not be read. */
  readonly error?: string;
}

/** What the routes read from the control plane (internal). */
export interface ControlPlaneState {
  readonly auth: ControlPlaneAuthenticator | undefined;
  readonly toggles: RuntimeToggles;
  readonly registry: Registry;
  readonly stream: BackpressureEventStream;
  readonly maxBodyBytes: number;
  /** Foreign origins allowed to call the state-changing endpoints (normalised). */
  readonly allowedOrigins: ReadonlySet<string>;
  shards(): {
    namespace: string;
    stats: ResourceLeaseQueueStats;
    latest: ResourceLeaseBackpressureSignal | undefined;
    /** The shard's busiest dispatch keys (at most `top`); computed only when asked. */
    busiestKeys: (top: number | undefined) => ResourceLeaseKeyStats[];
  }[];
  providers(): PeerHealthSnapshotProvider[];
  checkpoints(): ReplicationCheckpointRow[];
  readinessIssues(): string[];
}

type Route = (state: ControlPlaneState, req: IncomingMessage, res: ServerResponse) => Promise<void> | void;

interface RouteSpec {
  readonly GET?: Route;
  readonly POST?: Route;
}

const PREFIX = "/omnirelay/control";

const routes: ReadonlyMap<string, RouteSpec> = new Map<string, RouteSpec>([
  [`${PREFIX}/lease-health`, { GET: leaseHealth }],
  [`${PREFIX}/backpressure`, { GET: backpressure }],
  [`${PREFIX}/backpressure/stream`, { GET: (state, req, res) => state.stream.open(req, res) }],
  [
    `${PREFIX}/replication/checkpoint`,
    { GET: (state, _req, res) => sendJson(res, 200, { sinks: state.checkpoints() }) },
  ],
  [`${PREFIX}/queues`, { GET: queues }],
  [
    `${PREFIX}/logging`,
    {
      GET: (state, _req, res) => sendJson(res, 200, state.toggles.logging),
      POST: async (state, req, res) =>
        sendJson(res, 200, state.toggles.setLogging(await readJsonObject(req, res, state.maxBodyBytes))),
    },
  ],
  [
    `${PREFIX}/tracing`,
    {
      GET: (state, _req, res) => sendJson(res, 200, state.toggles.tracing),
      POST: async (state, req, res) =>
        sendJson(res, 200, state.toggles.setTracing(await readJsonObject(req, res, state.maxBodyBytes))),
    },
  ],
  ["/healthz", { GET: (_state, _req, res) => sendJson(res, 200, { status: "ok", mode: "live" }) }],
  ["/readyz", { GET: readyz }],
  ["/metrics", { GET: metrics }],
]);

/** Methods that never change anything; every other method is checked against cross-site request forgery. */
const SAFE_METHODS: ReadonlySet<string> = new Set(["GET", "HEAD", "OPTIONS"]);

/**
 * Serves a control-plane route. Resolves `false`, without reading the request, when the path is not one.
 * Errors are written as JSON error responses. A state-changing request (any method but GET, HEAD and OPTIONS) is
 * refused when it comes from a foreign origin (403), before authentication, and a POST that is not
 * `application/json` is refused (415) before its body is read. A method the route does not serve is refused with
 * 405 `omnirelay.control.method_not_allowed` (status `UNIMPLEMENTED`) and an `Allow` header.
 */
export async function routeRequest(
  state: ControlPlaneState,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<boolean> {
  const path = pathOf(req.url);
  const spec = routes.get(path);
  if (spec === undefined) return false;
  const abort = new AbortController();
  const onClose = (): void => abort.abort();
  res.once("close", onClose);
  // Every answer is JSON, an event stream or the metrics text, each with its type: never let a browser sniff one.
  res.setHeader("x-content-type-options", "nosniff");
  try {
    const changesState = !SAFE_METHODS.has(req.method ?? "GET");
    if (changesState) assertSameOrigin(req, state.allowedOrigins);
    if (state.auth) await state.auth.authorize(req, path, abort.signal);
    const method = req.method === "HEAD" ? "GET" : req.method;
    const route = method === "GET" || method === "POST" ? spec[method] : undefined;
    if (route === undefined) {
      const allow = Object.keys(spec).join(", ");
      res.setHeader("allow", allow);
      throw new OmniRelayError({
        status: "unimplemented",
        code: ErrorCodes.controlPlane.methodNotAllowed,
        message: `${req.method} is not allowed on ${path}; use ${allow}.`,
        metadata: { method: String(req.method) },
      });
    }
    if (changesState) assertJsonContentType(req);
    await route(state, req, res);
  } catch (err) {
    req.resume();
    sendError(res, err);
  } finally {
    res.off("close", onClose);
  }
  return true;
}

function pathOf(url: string | undefined): string {
  const raw = (url ?? "/").split("?")[0] ?? "/";
  return raw.length > 1 && raw.endsWith("/") ? raw.slice(0, -1) : raw;
}

/** Most peers one `/lease-health` answer lists (and its default `limit`). */
const LEASE_HEALTH_MAX_PEERS = 1_000;

/**
 * `/lease-health`: every provider's peers sorted by id, at most `limit` of them after the peer id `after`; the
 * summary and `totalPeers` count every peer, `nextAfter` (the last id listed) is there when more follow.
 */
function leaseHealth(state: ControlPlaneState, req: IncomingMessage, res: ServerResponse): void {
  const query = new URLSearchParams((req.url ?? "").split("?")[1] ?? "");
  const limit = integerParam(query, "limit", LEASE_HEALTH_MAX_PEERS) ?? LEASE_HEALTH_MAX_PEERS;
  const after = query.get("after");
  const snapshots: PeerLeaseHealthSnapshot[] = [];
  for (const provider of state.providers()) snapshots.push(...provider.snapshot());
  const { summary } = PeerLeaseHealthDiagnostics.fromSnapshots(snapshots);
  const sorted = snapshots.sort((a, b) => (a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0));
  const from = after === null ? 0 : sorted.findIndex((s) => s.peerId > after);
  const page = from < 0 ? [] : sorted.slice(from, from + limit);
  const more = from >= 0 && from + limit < sorted.length;
  sendJson(res, 200, {
    peers: PeerLeaseHealthDiagnostics.fromSnapshots(page).peers,
    summary,
    totalPeers: snapshots.length,
    ...(more ? { nextAfter: page.at(-1)?.peerId } : {}),
  });
}

function backpressure(state: ControlPlaneState, _req: IncomingMessage, res: ServerResponse): void {
  const shards = state
    .shards()
    .filter((s) => s.latest !== undefined)
    .map((s) => toJson({ ...(s.latest as ResourceLeaseBackpressureSignal), shard: s.namespace }));
  if (shards.length === 0) {
    // No body, but still typed: every control-plane answer carries a Content-Type.
    res.writeHead(204, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
    res.end();
    return;
  }
  sendJson(res, 200, { shards });
}

function queues(state: ControlPlaneState, req: IncomingMessage, res: ServerResponse): void {
  const top = topOf(req.url);
  sendJson(res, 200, {
    queues: state.shards().map(({ namespace, stats, busiestKeys }) => ({
      namespace,
      state: stats.state,
      pendingCount: stats.pendingCount,
      delayedCount: stats.delayedCount,
      activeLeaseCount: stats.activeLeaseCount,
      deadLetterCount: stats.deadLetterCount,
      capacity: stats.capacity,
      lastEventSequence: stats.lastEventSequence,
      busiestKeys: busiestKeys(top),
    })),
  });
}

/** Query `top` of `/queues`: how many busiest keys each shard lists (1–100, default 10). */
function topOf(url: string | undefined): number | undefined {
  return integerParam(new URLSearchParams((url ?? "").split("?")[1] ?? ""), "top", 100);
}

/** An integer query parameter from 1 to `max`; `undefined` when absent. */
function integerParam(query: URLSearchParams, name: string, max: number): number | undefined {
  const raw = query.get(name);
  if (raw === null) return undefined;
  const n = /^\d{1,7}$/.test(raw) ? Number(raw) : Number.NaN;
  if (n >= 1 && n <= max) return n;
  throw new OmniRelayError({
    status: "invalid-argument",
    code: ErrorCodes.resourceLease.argumentInvalid,
    message: `${name} must be an integer from 1 to ${max}, got ${JSON.stringify(raw.slice(0, 32))}.`,
    metadata: { field: name },
  });
}

function readyz(state: ControlPlaneState, _req: IncomingMessage, res: ServerResponse): void {
  const issues = state.readinessIssues();
  const ok = issues.length === 0;
  sendJson(res, ok ? 200 : 503, { status: ok ? "ok" : "unavailable", mode: "ready", issues });
}

async function metrics(state: ControlPlaneState, _req: IncomingMessage, res: ServerResponse): Promise<void> {
  let text: string;
  try {
    text = await state.registry.metrics();
  } catch (err) {
    throw new OmniRelayError({
      status: "internal",
      code: ErrorCodes.controlPlane.metricsFailed,
      message: "Collecting metrics failed.",
      cause: err,
    });
  }
  res.writeHead(200, { "content-type": state.registry.contentType, "cache-control": "no-store" });
  res.end(text);
}
