import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import type { Logger } from "@omnirelay/core";
import type { MeshDemoConfig } from "./config.js";
import { sendJson } from "./demo-requests.js";
import type { DiagnosticsServer } from "./diagnostics-server.js";
import type { JetStreamMeshNode } from "./jetstream-node.js";
import { meshStatus } from "./mesh-status.js";

/** The page of the JetStream mode, next to the sources (`src/mesh-page.html`), from `src/` or the bundled `dist/`. */
function loadPage(): string {
  for (const candidate of ["./mesh-page.html", "../src/mesh-page.html", "./src/mesh-page.html"]) {
    try {
      return readFileSync(fileURLToPath(new URL(candidate, import.meta.url)), "utf8");
    } catch {
      // try the next location
    }
  }
  return "<!doctype html><title>OmniRelay mesh</title><p>mesh-page.html is missing; see /demo/mesh.</p>";
}

/**
 * The diagnostics role of a JetStream-mode node: the live page at `/` (which node owns which shard, and every move),
 * `/demo/mesh` (per shard: owner, epoch, placement, and for the shards served here the log's last sequence against
 * the queue's applied one; JetStream reachability; the node's ownership changes), `/demo/catalogs`, and for every
 * other path the control plane (`/metrics` with the ownership and refusal counters, `/healthz`, `/readyz` with the
 * JetStream probe).
 */
export async function startJetStreamDiagnostics(
  config: MeshDemoConfig,
  node: JetStreamMeshNode,
  logger: Logger,
): Promise<DiagnosticsServer> {
  const page = loadPage();
  const controlPlane = node.controlPlane.handler();
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    void (async () => {
      try {
        if (req.method === "GET" && path === "/") {
          res.writeHead(200, { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" });
          res.end(page);
        } else if (req.method === "GET" && path === "/demo/mesh") sendJson(res, 200, await meshStatus(node));
        else if (req.method === "GET" && path === "/demo/catalogs") sendJson(res, 200, node.catalog.view(50));
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
      await new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
    },
  };
}
