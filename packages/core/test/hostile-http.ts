import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { ResourceLeaseClient } from "../src/index.js";

// Shared by the tests of the client side facing a broken or hostile server: hand-written node:http servers on
// 127.0.0.1 and the clients made against them, closed by `closeHostile` (each test file registers it in afterEach).

const servers: Server[] = [];
const clients: ResourceLeaseClient[] = [];

/** Starts a server whose every request `handler` answers; resolves with its URL. */
export async function listenHostile(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Registers a client to be closed after the test. */
export function keepClient(client: ResourceLeaseClient): ResourceLeaseClient {
  clients.push(client);
  return client;
}

/** Closes the clients, then the servers (their open connections first). */
export async function closeHostile(): Promise<void> {
  await Promise.all(clients.splice(0).map((c) => c.close()));
  const closing = servers.splice(0);
  for (const s of closing) s.closeAllConnections();
  await Promise.all(closing.map((s) => new Promise((resolve) => s.close(resolve))));
}
