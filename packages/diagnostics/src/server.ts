import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { ErrorCodes, type Logger, OmniRelayError } from "@omnirelay/core";
import { sendError } from "./http.js";

/** Options of {@link ResourceLeaseControlPlane.listen}. */
export interface ControlPlaneListenOptions {
  /** @defaultValue '127.0.0.1' */
  readonly host?: string;
  /** @defaultValue 0 (any free port) */
  readonly port?: number;
  /** Serve HTTPS; with `ca`, client certificates are requested and verified ones become principals. */
  readonly tls?: { readonly key: string | Buffer; readonly cert: string | Buffer; readonly ca?: string | Buffer };
}

/** A control plane listening on its own port. */
export interface ControlPlaneServer extends AsyncDisposable {
  /** Base URL, e.g. `http://127.0.0.1:39123`. */
  readonly url: string;
  readonly port: number;
  /** Stops accepting connections and ends open streams. Idempotent. */
  close(): Promise<void>;
}

/** What {@link serveControlPlane} needs besides the listen options (internal). */
export interface ServeHooks {
  readonly handle: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  readonly logger: Logger;
  /** Called once when the server starts closing. */
  readonly onClose: (server: ControlPlaneServer) => void;
}

/** Starts an HTTP(S) server for the control plane; unknown routes answer 404 JSON. */
export async function serveControlPlane(
  options: ControlPlaneListenOptions,
  hooks: ServeHooks,
): Promise<ControlPlaneServer> {
  const { handle, logger, onClose } = hooks;
  const onRequest = (req: IncomingMessage, res: ServerResponse): void => {
    void handle(req, res).then((handled) => {
      if (handled) return;
      req.resume();
      const path = (req.url ?? "/").split("?")[0] ?? "/";
      sendError(
        res,
        new OmniRelayError({
          status: "not-found",
          code: ErrorCodes.controlPlane.routeNotFound,
          message: `No control-plane route for ${req.method} ${path}.`,
          metadata: { path },
        }),
      );
    });
  };
  const tls = options.tls;
  const server: Server = tls
    ? createHttpsServer(
        {
          key: tls.key,
          cert: tls.cert,
          ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: false } : {}),
        },
        onRequest,
      )
    : createHttpServer(onRequest);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port ?? 0, options.host ?? "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  server.on("error", (err) => logger.error({ err }, "Control-plane server error."));
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  let closing: Promise<void> | undefined;
  const handleServer: ControlPlaneServer = {
    url: `${tls ? "https" : "http"}://${host}:${address.port}`,
    port: address.port,
    close: () => {
      closing ??= new Promise<void>((resolve) => {
        onClose(handleServer);
        server.close(() => resolve());
        server.closeIdleConnections();
        // SSE responses keep their connections open; the streams were ended by close() or end here.
        setImmediate(() => server.closeAllConnections());
      });
      return closing;
    },
    [Symbol.asyncDispose]: () => handleServer.close(),
  };
  return handleServer;
}
