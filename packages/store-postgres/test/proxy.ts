import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";

/**
 * A TCP forwarder on a free loopback port; `close()` cuts every connection, as a server that went away would, and
 * `freeze()` stops forwarding while every connection stays open, as a server that stopped answering would.
 */
export async function startProxy(target: { host: string; port: number }) {
  const sockets = new Set<Socket>();
  let frozen = false;
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("error", () => undefined);
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (chunk: Buffer) => frozen || upstream.write(chunk));
    upstream.on("data", (chunk: Buffer) => frozen || client.write(chunk));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  const freeze = () => {
    frozen = true;
  };
  return { port: (server.address() as AddressInfo).port, freeze, close, [Symbol.asyncDispose]: close };
}
