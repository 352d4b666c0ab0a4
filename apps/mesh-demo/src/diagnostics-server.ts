import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import {
  HttpOutbound,
  isOmniRelayError,
  type Logger,
  ResourceLeaseClient,
  type ResourceLeaseReplicationEvent,
} from "@omnirelay/core";
import { PeerLeaseHealthDiagnostics } from "@omnirelay/core/peers";
import { encodeReplicationEvent, statusInfo } from "@omnirelay/core/wire";
import { type CatalogOperation, type CatalogOperationType, CatalogOperationTypes } from "./catalog.js";
import { type MeshDemoConfig, shardOfCatalog } from "./config.js";
import type { DispatcherNode } from "./dispatcher-node.js";
import { catalogPayload } from "./seeder.js";

/** The diagnostics role's HTTP server. */
export interface DiagnosticsServer {
  readonly url: string;
  close(): Promise<void>;
}

const encoder = new TextEncoder();

/** Finds the page next to the sources (`src/page.html`), from `src/` or from the bundled `dist/`. */
function loadPage(): string {
  const candidates = ["./page.html", "../src/page.html", "./src/page.html"];
  for (const candidate of candidates) {
    try {
      return readFileSync(fileURLToPath(new URL(candidate, import.meta.url)), "utf8");
    } catch {
      // try the next location
    }
  }
  return "<!doctype html><title>OmniRelay mesh</title><p>page.html is missing; see /demo/state.</p>";
}

function sendJson(res: ServerResponse, status: number, value: unknown): void {
  const body = JSON.stringify(value, null, 2);
  res.writeHead(status, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" });
  res.end(body);
}

async function readBody(req: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > limit) throw new Error("request body too large");
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  const value = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new Error("body must be an object");
  return value as Record<string, unknown>;
}

/** The whole state the live page shows (also `GET /demo/state`). */
export function meshState(node: DispatcherNode): Record<string, unknown> {
  const now = Date.now();
  const replication = node.shards.map((s) => ({
    shard: s.namespace,
    lastSequence: s.durable.queue.stats().lastEventSequence,
    followerSequence: s.follower.checkpoint,
    behindEvents: Math.max(0, s.durable.queue.stats().lastEventSequence - s.follower.checkpoint),
    lagMs: s.follower.checkpoint >= s.durable.queue.stats().lastEventSequence ? 0 : (s.tracked.checkpoint().lagMs ?? 0),
  }));
  return {
    observedAt: new Date(now).toISOString(),
    health: PeerLeaseHealthDiagnostics.fromSnapshots(node.tracker.snapshot()),
    shards: node.shards.map((s) => {
      const stats = s.durable.queue.stats();
      const latest = s.durable.queue.backpressure?.latest;
      return {
        shard: s.shard,
        namespace: s.namespace,
        pending: stats.pendingCount,
        delayed: stats.delayedCount,
        active: stats.activeLeaseCount,
        deadLetters: stats.deadLetterCount,
        state: stats.state,
        lastEventSequence: stats.lastEventSequence,
        backpressure: {
          active: latest?.isActive ?? false,
          throttling: s.limiter.isBackpressureActive,
          highWatermark: latest?.highWatermark,
          lowWatermark: latest?.lowWatermark,
          since: latest ? new Date(latest.observedAt).toISOString() : undefined,
        },
      };
    }),
    replication,
    eventsSeen: node.feed.count,
    events: node.feed.latest(40),
    catalogs: node.catalog.view(25),
  };
}

/** The last `limit` events of every shard, read from the durable SQLite logs, newest first. */
async function recentLogEvents(node: DispatcherNode, limit: number): Promise<unknown[]> {
  const rows: { shard: string; event: ResourceLeaseReplicationEvent }[] = [];
  for (const s of node.shards) {
    const last = await s.durable.replicator.lastSequence();
    for await (const event of s.durable.replicator.read(Math.max(1, last - limit + 1), limit)) {
      rows.push({ shard: s.namespace, event });
    }
  }
  rows.sort((a, b) => b.event.timestamp - a.event.timestamp || b.event.sequenceNumber - a.event.sequenceNumber);
  return rows.slice(0, limit).map((r) => ({ shard: r.shard, ...encodeReplicationEvent(r.event) }));
}

/**
 * Why a `POST /demo/enqueue` must be refused, if it must: a body not declared as JSON (415), or a request from a
 * browser page of another origin (403). A browser sends a cross-origin text/plain POST without asking first, so
 * without these checks any web page could enqueue into a demo it can reach.
 */
function refusal(req: IncomingMessage): { status: number; code: string; message: string } | undefined {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    let same = false;
    try {
      same = new URL(origin).origin === new URL(`http://${req.headers.host ?? ""}`).origin;
    } catch {
      same = false;
    }
    if (!same) {
      return { status: 403, code: "mesh.demo.origin_forbidden", message: `Origin '${origin}' may not enqueue.` };
    }
  } else if (req.headers["sec-fetch-site"] === "cross-site" || req.headers["sec-fetch-site"] === "same-site") {
    return { status: 403, code: "mesh.demo.origin_forbidden", message: "Cross-site requests may not enqueue." };
  }
  const type = req.headers["content-type"]?.split(";")[0]?.trim().toLowerCase();
  if (type !== "application/json") {
    return {
      status: 415,
      code: "mesh.demo.unsupported_media_type",
      message: "POST /demo/enqueue needs 'Content-Type: application/json'.",
    };
  }
  return undefined;
}

/** Builds the `POST /demo/enqueue` operation (as the original's MeshEnqueueRequest). */
function manualOperation(body: Record<string, unknown>): { operation: CatalogOperation; resourceId?: string } {
  const str = (key: string, fallback: string) => (typeof body[key] === "string" ? (body[key] as string) : fallback);
  const type = str("operation", "CommitSnapshot");
  if (!(CatalogOperationTypes as readonly string[]).includes(type)) {
    throw new Error(`operation must be one of ${CatalogOperationTypes.join(", ")}`);
  }
  const version = body.version === undefined ? 1 : Number(body.version);
  if (!Number.isSafeInteger(version) || version < 1) throw new Error("version must be an integer >= 1");
  const list = (key: string, fallback: string[]) =>
    Array.isArray(body[key]) ? (body[key] as unknown[]).map(String) : fallback;
  const requestId = str("requestId", crypto.randomUUID().replaceAll("-", ""));
  const operation: CatalogOperation = {
    catalog: str("catalog", "fabric-lakehouse"),
    database: str("database", "sales"),
    table: str("table", "ad_hoc"),
    operationType: type as CatalogOperationType,
    version,
    principal: str("principal", "cli.enqueue"),
    columns: list("columns", ["id STRING", "payload STRING"]),
    changes: list("changes", [`manual ${type}`]),
    timestamp: new Date().toISOString(),
    requestId,
  };
  return { operation };
}

/**
 * Serves the diagnostics role: the live page at `/`, `/demo/*` (state, SSE stream, lease health, backpressure,
 * replication, catalogs, enqueue) and, for every other path, the control plane (`/metrics`, `/healthz`, `/readyz`,
 * `/omnirelay/control/*`).
 */
export async function startDiagnosticsServer(
  config: MeshDemoConfig,
  node: DispatcherNode,
  logger: Logger,
): Promise<DiagnosticsServer> {
  const page = loadPage();
  const controlPlane = node.controlPlane.handler();
  // One connection pool for the manual enqueues; each request gets a client that forwards its caller's token, so
  // with auth on this page is no way around it: the dispatcher checks the caller's own token.
  const outbound = new HttpOutbound({ url: node.url });
  const namespaces = new Map(node.shards.map((s) => [s.shard, s.namespace]));
  const clientFor = (shard: string, authorization: string | undefined) =>
    new ResourceLeaseClient({
      outbound,
      namespace: namespaces.get(shard) as string,
      caller: "diagnostics",
      ...(authorization ? { headers: { authorization } } : {}),
    });
  const streams = new Set<ServerResponse>();
  const tick = setInterval(() => {
    if (streams.size === 0) return;
    const frame = `event: state\ndata: ${JSON.stringify(meshState(node))}\n\n`;
    for (const res of streams) res.write(frame);
  }, 1_000);

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<void> | void> = {
    "GET /": (_req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      res.end(page);
    },
    "GET /demo/state": (_req, res) => sendJson(res, 200, meshState(node)),
    "GET /demo/stream": (req, res) => {
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        connection: "keep-alive",
      });
      res.write(`retry: 2000\nevent: state\ndata: ${JSON.stringify(meshState(node))}\n\n`);
      streams.add(res);
      req.on("close", () => streams.delete(res));
    },
    "GET /demo/lease-health": (_req, res) =>
      sendJson(res, 200, PeerLeaseHealthDiagnostics.fromSnapshots(node.tracker.snapshot())),
    "GET /demo/backpressure": (_req, res) => {
      const signals = node.shards
        .map((s) => ({ shard: s.namespace, latest: s.durable.queue.backpressure?.latest }))
        .filter((s) => s.latest !== undefined)
        .map((s) => ({ shard: s.shard, ...s.latest, observedAt: new Date(s.latest?.observedAt ?? 0).toISOString() }));
      if (signals.length === 0) {
        res.writeHead(204, { "content-type": "application/json; charset=utf-8", "cache-control": "no-store" }).end();
        return;
      }
      sendJson(res, 200, { shards: signals });
    },
    "GET /demo/replication": async (_req, res) => sendJson(res, 200, await recentLogEvents(node, 32)),
    "GET /demo/catalogs": (req, res) => {
      const limit = Number(new URL(req.url ?? "/", "http://x").searchParams.get("limit") ?? 50);
      sendJson(res, 200, node.catalog.view(Number.isSafeInteger(limit) ? Math.min(Math.max(limit, 1), 1000) : 50));
    },
    "POST /demo/enqueue": async (req, res) => {
      const refused = refusal(req);
      if (refused) {
        req.resume();
        const status = refused.status === 403 ? "permission-denied" : "invalid-argument";
        sendJson(res, refused.status, { status, code: refused.code, message: refused.message });
        return;
      }
      let built: ReturnType<typeof manualOperation>;
      let raw: Record<string, unknown>;
      try {
        raw = await readBody(req, 65_536);
        built = manualOperation(raw);
      } catch (error) {
        sendJson(res, 400, {
          status: "invalid-argument",
          code: "mesh.demo.enqueue.invalid",
          message: (error as Error).message,
        });
        return;
      }
      const { operation } = built;
      const payload = catalogPayload(operation);
      const rawBody = typeof raw.body === "string" ? raw.body : undefined;
      const item =
        rawBody === undefined
          ? payload
          : {
              ...payload,
              resourceId: `${operation.catalog}.${operation.database}.${operation.table}.manual`,
              body: encoder.encode(rawBody),
            };
      const shard = shardOfCatalog(config.shards, operation.catalog);
      try {
        const result = await clientFor(shard, req.headers.authorization).enqueue(item);
        sendJson(res, 200, {
          shard,
          sequenceId: result.sequenceId,
          requestId: operation.requestId,
          duplicate: result.duplicate,
          stats: result.stats,
        });
      } catch (error) {
        if (!isOmniRelayError(error)) throw error;
        sendJson(res, statusInfo(error.status).httpStatus, {
          status: error.status,
          code: error.code,
          message: error.message,
          metadata: error.metadata,
        });
      }
    },
  };

  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const route = routes[`${req.method} ${path}`];
    void (async () => {
      try {
        if (route) await route(req, res);
        else if (!(await controlPlane(req, res)))
          sendJson(res, 404, { status: "not-found", message: `No route ${path}` });
      } catch (err) {
        logger.error({ err, path }, "Diagnostics request failed.");
        if (!res.headersSent) sendJson(res, 500, { status: "internal", message: "diagnostics request failed" });
        else res.end();
      }
    })();
  });
  const http = new URL(config.httpUrl);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(http.port || 80), http.hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${http.hostname}:${port}`,
    close: async () => {
      clearInterval(tick);
      for (const res of streams) res.end();
      streams.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await outbound.close();
    },
  };
}
