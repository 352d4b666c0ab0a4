import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { HttpOutbound, isOmniRelayError, type Logger, ResourceLeaseClient } from "@omnirelay/core";
import { PeerLeaseHealthDiagnostics } from "@omnirelay/core/peers";
import { HistoryResponseMessage, statusInfo } from "@omnirelay/core/wire";
import { type MeshDemoConfig, shardOfCatalog } from "./config.js";
import { manualOperation, readBody, redriveRequest, refusal, sendJson } from "./demo-requests.js";
import type { DispatcherNode } from "./dispatcher-node.js";
import { DeadLetterView, MeshHistory, meshState, recentLogEvents } from "./mesh-state.js";
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

/**
 * Serves the diagnostics role: the live page at `/`, `/demo/*` (state, SSE stream, lease health, backpressure,
 * replication, catalogs, dead letters, enqueue, redrive) and, for every other path, the control plane (`/metrics`,
 * `/healthz`, `/readyz`, `/omnirelay/control/*`). A sample for the charts is taken every second, page open or not.
 *
 * The mutating endpoints (enqueue, redrive) refuse other origins and non-JSON bodies, and call the dispatcher over
 * RPC with the caller's own `Authorization` header, so with auth on they need a token like any other client.
 */
export async function startDiagnosticsServer(
  config: MeshDemoConfig,
  node: DispatcherNode,
  logger: Logger,
): Promise<DiagnosticsServer> {
  const page = loadPage();
  const controlPlane = node.controlPlane.handler();
  // One connection pool for the manual enqueues and redrives; each request gets a client that forwards its caller's
  // token, so with auth on this page is no way around it: the dispatcher checks the caller's own token.
  const outbound = new HttpOutbound({ url: node.url });
  const namespaces = new Map(
    node.shards.flatMap((s) => [[s.shard, s.namespace] as const, [s.namespace, s.namespace] as const]),
  );
  const clientFor = (shard: string, authorization: string | undefined) =>
    new ResourceLeaseClient({
      outbound,
      namespace: namespaces.get(shard) as string,
      caller: "diagnostics",
      ...(authorization ? { headers: { authorization } } : {}),
    });
  const history = new MeshHistory();
  const deadLetters = new DeadLetterView();
  const state = (historyLimit?: number) =>
    meshState(node, { history, deadLetters, ...(historyLimit ? { historyLimit } : {}) });
  const streams = new Set<ServerResponse>();
  history.sample(node);
  const tick = setInterval(() => {
    history.sample(node);
    if (streams.size === 0) return;
    // The first frame of a stream carries the whole history; later ones the last few samples (the page merges them).
    const frame = `event: state\ndata: ${JSON.stringify(state(5))}\n\n`;
    for (const res of streams) res.write(frame);
  }, 1_000);
  /** Answers an error the dispatcher raised with its status, or rethrows anything else. */
  const sendRpcError = (res: ServerResponse, error: unknown) => {
    if (!isOmniRelayError(error)) throw error;
    sendJson(res, statusInfo(error.status).httpStatus, {
      status: error.status,
      code: error.code,
      message: error.message,
      metadata: error.metadata,
    });
  };
  /** The CSRF checks and the body of a mutating request; answers and resolves undefined when it is refused. */
  const accept = async (req: IncomingMessage, res: ServerResponse, action: "enqueue" | "redrive") => {
    const refused = refusal(req, action);
    if (refused) {
      req.resume();
      const status = refused.status === 403 ? "permission-denied" : "invalid-argument";
      sendJson(res, refused.status, { status, code: refused.code, message: refused.message });
      return undefined;
    }
    try {
      return await readBody(req, 65_536);
    } catch (error) {
      sendJson(res, 400, {
        status: "invalid-argument",
        code: `mesh.demo.${action}.invalid`,
        message: (error as Error).message,
      });
      return undefined;
    }
  };

  const routes: Record<string, (req: IncomingMessage, res: ServerResponse) => Promise<void> | void> = {
    "GET /": (_req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
      res.end(page);
    },
    "GET /demo/state": (_req, res) => sendJson(res, 200, state()),
    "GET /demo/stream": (req, res) => {
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        connection: "keep-alive",
      });
      res.write(`retry: 2000\nevent: state\ndata: ${JSON.stringify(state())}\n\n`);
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
    "GET /demo/dead-letters": (_req, res) => sendJson(res, 200, { shards: deadLetters.list(node) }),
    // An item's lease history (the live page's click on an event): ?shard=<name or namespace>&sequenceId=<id>.
    "GET /demo/item-history": (req, res) => {
      const query = new URL(req.url ?? "/", "http://x").searchParams;
      const namespace = namespaces.get(query.get("shard") ?? "");
      const shard = node.shards.find((s) => s.namespace === namespace);
      const sequenceId = Number(query.get("sequenceId"));
      if (!shard || !Number.isSafeInteger(sequenceId) || sequenceId < 1) {
        sendJson(res, 400, {
          status: "invalid-argument",
          code: "mesh.demo.history.invalid",
          message: "Give a known shard and a sequenceId (a positive integer).",
        });
        return;
      }
      try {
        sendJson(res, 200, {
          shard: shard.namespace,
          ...HistoryResponseMessage.write(shard.durable.queue.history({ sequenceId })),
        });
      } catch (error) {
        sendRpcError(res, error);
      }
    },
    "POST /demo/redrive": async (req, res) => {
      const raw = await accept(req, res, "redrive");
      if (!raw) return;
      let request: ReturnType<typeof redriveRequest>;
      try {
        request = redriveRequest(raw);
        if (request.shard !== undefined && !namespaces.has(request.shard)) {
          throw new Error(
            `unknown shard '${request.shard}'; shards: ${[...node.shards.map((s) => s.namespace)].join(", ")}`,
          );
        }
      } catch (error) {
        sendJson(res, 400, {
          status: "invalid-argument",
          code: "mesh.demo.redrive.invalid",
          message: (error as Error).message,
        });
        return;
      }
      const targets =
        request.shard === undefined ? node.shards.map((s) => s.namespace) : [namespaces.get(request.shard) as string];
      try {
        const redriven: { shard: string; count: number }[] = [];
        for (const shard of targets) {
          const ids = request.sequenceIds ? { sequenceIds: request.sequenceIds } : {};
          redriven.push({ shard, count: await clientFor(shard, req.headers.authorization).redrive(ids) });
        }
        const total = redriven.reduce((n, r) => n + r.count, 0);
        logger.info({ redriven, total }, "Dead letters redriven from the diagnostics page.");
        sendJson(res, 200, { redriven, total });
      } catch (error) {
        sendRpcError(res, error);
      }
    },
    "POST /demo/enqueue": async (req, res) => {
      const raw = await accept(req, res, "enqueue");
      if (!raw) return;
      let built: ReturnType<typeof manualOperation>;
      try {
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
        sendRpcError(res, error);
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
