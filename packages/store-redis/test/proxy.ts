import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";

/** A TCP proxy in front of Redis that can lose a reply, or go away entirely. */
export interface RedisProxy extends AsyncDisposable {
  readonly url: string;
  /** The next command that holds `NX` reaches Redis, but its reply is dropped together with the connection. */
  loseNextNxReply(): void;
  /** Replies lost since the last {@link loseNextNxReply}. */
  readonly lostReplies: number;
  /** Client connections open now. */
  readonly connections: number;
  /** Stops listening and cuts every connection. */
  close(): Promise<void>;
}

/** Starts a proxy on a free loopback port that forwards to `target` (`host:port`). */
export async function startRedisProxy(target: { host: string; port: number }): Promise<RedisProxy> {
  const sockets = new Set<Socket>();
  let armed = false;
  let lost = 0;
  let connections = 0;
  const server = createServer((client) => {
    const upstream = connect(target.port, target.host);
    connections++;
    client.once("close", () => connections--);
    let dropReply = false;
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on("close", () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
      socket.on("error", () => undefined);
    }
    client.on("data", (chunk: Buffer) => {
      if (armed && chunk.includes("NX")) {
        armed = false;
        dropReply = true;
      }
      upstream.write(chunk);
    });
    upstream.on("data", (chunk: Buffer) => {
      if (!dropReply) {
        client.write(chunk);
        return;
      }
      // Redis has executed the command (this is its reply): the client never hears of it.
      lost++;
      client.destroy();
    });
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const close = async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: `redis://127.0.0.1:${port}`,
    loseNextNxReply: () => {
      armed = true;
      lost = 0;
    },
    get lostReplies() {
      return lost;
    },
    get connections() {
      return connections;
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
