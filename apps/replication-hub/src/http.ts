import { createServer, type Server, type ServerResponse } from "node:http";
import { ErrorCodes } from "@omnirelay/core";
import { type GrpcReplicationHub, sourceKey } from "@omnirelay/replicator-grpc";

/**
 * The hub's HTTP side: `GET /healthz` and `GET /readyz` (200 while serving, else 503; a source whose log failed to
 * open does not make the hub unready — it serves the others — and is counted in `failedSources`), `GET /metrics`
 * (Prometheus text) and `GET /sources` (JSON status of every source, failed ones with `failed`), and `POST /backup`
 * (online backup of every open source log into the directory fixed at start, never one named by the request; the
 * sources it could not copy because their log failed to open are listed in `failed`) when `backup` is given.
 * Started and drained like an inbound, so a `LifecycleGroup` orders it with the hub.
 */
export class HubHttp {
  private readonly server: Server;
  private boundPort = 0;
  private backingUp = false;

  constructor(
    hub: GrpcReplicationHub,
    private readonly options: { host: string; port: number; backup?: () => Promise<string[]> },
  ) {
    this.server = createServer((req, res) => {
      const path = (req.url ?? "/").split("?")[0];
      if (req.method === "POST" && path === "/backup" && options.backup) {
        this.backup(hub, res, options.backup);
      } else if (req.method !== "GET") {
        res.writeHead(405).end();
      } else if (path === "/healthz" || path === "/readyz") {
        const serving = hub.state === "running";
        const sources = hub.sourceStatuses();
        res.writeHead(serving ? 200 : 503, { "content-type": "application/json" });
        res.end(
          JSON.stringify({
            status: serving ? "serving" : hub.state,
            sources: sources.length,
            failedSources: sources.filter((s) => s.failed).length,
          }),
        );
      } else if (path === "/metrics") {
        res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
        res.end(hub.metrics());
      } else if (path === "/sources") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ sources: hub.sourceStatuses() }));
      } else {
        res.writeHead(404).end();
      }
    });
  }

  /**
   * Runs one backup at a time. Concurrent backups write the same files in the backup directory: SQLite then failed
   * some with "disk I/O error" (HTTP 500) and the others answered 200 listing a file that one of them had removed. A
   * request while a backup runs is refused with 429 and `Retry-After`; waiting for the running one would not do, as
   * it may have started before events the caller expects in its backup were acknowledged.
   */
  private backup(hub: GrpcReplicationHub, res: ServerResponse, run: () => Promise<string[]>): void {
    if (this.backingUp) {
      res.writeHead(429, { "content-type": "application/json", "retry-after": "1" });
      res.end(
        JSON.stringify({
          error: "A backup is already running; retry when it has finished.",
          code: ErrorCodes.rpc.rateLimited,
        }),
      );
      return;
    }
    this.backingUp = true;
    run()
      .then(
        (files) => {
          res.writeHead(200, { "content-type": "application/json" });
          res.end(JSON.stringify({ files, failed: failedKeys(hub) }));
        },
        (error: unknown) => {
          res.writeHead(500, { "content-type": "application/json" });
          res.end(JSON.stringify({ error: error instanceof Error ? error.message : String(error) }));
        },
      )
      .finally(() => {
        this.backingUp = false;
      });
  }

  /** The bound port once started. */
  get port(): number {
    return this.boundPort;
  }

  /** Listens; resolves with the bound port. */
  async start(): Promise<{ port: number }> {
    const server = this.server;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.options.port, this.options.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const address = server.address();
    this.boundPort = typeof address === "object" && address ? address.port : this.options.port;
    return { port: this.boundPort };
  }

  /** Stops listening, lets requests in flight finish for up to `graceMs`, then drops the connections. */
  async close(options: { graceMs?: number } = {}): Promise<void> {
    const server = this.server;
    if (!server.listening) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeIdleConnections();
    const timer = setTimeout(() => server.closeAllConnections(), options.graceMs ?? 5000);
    await closed;
    clearTimeout(timer);
  }
}

/** Keys of the sources whose log failed to open (a backup cannot copy them). */
function failedKeys(hub: GrpcReplicationHub): string[] {
  return hub
    .sourceStatuses()
    .filter((s) => s.failed)
    .map((s) => sourceKey(s));
}
