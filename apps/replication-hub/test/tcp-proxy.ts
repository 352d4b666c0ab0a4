import { createServer, type Server, Socket } from "node:net";

/**
 * A tiny TCP proxy for partition drills. `partition()` blackholes traffic: bytes on open connections are discarded
 * and new connections are accepted but never forwarded (like a dropped link, nothing is refused or reset). A client
 * that closes its side during the partition does not close the upstream side either: its FIN is lost too, so the
 * target sees a half-open connection. `heal()` resets the connections that lived through the partition (their
 * streams lost bytes, as after a NAT timeout) and forwards new ones again.
 */
export class TcpProxy {
  private server: Server | undefined;
  private partitioned = false;
  private readonly pairs = new Set<{ client: Socket; upstream: Socket | undefined }>();

  constructor(private readonly target: { host: string; port: number }) {}

  /** Listens on 127.0.0.1 and resolves with the port. */
  async start(): Promise<number> {
    const server = createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    this.server = server;
    const address = server.address();
    return typeof address === "object" && address ? address.port : 0;
  }

  /** Starts dropping all traffic. */
  partition(): void {
    this.partitioned = true;
  }

  /** Stops dropping traffic; connections that lived through the partition are reset. */
  heal(): void {
    this.partitioned = false;
    for (const pair of [...this.pairs]) this.drop(pair);
  }

  /** Closes the proxy and every connection. */
  async close(): Promise<void> {
    for (const pair of [...this.pairs]) this.drop(pair);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private accept(client: Socket): void {
    const pair: { client: Socket; upstream: Socket | undefined } = { client, upstream: undefined };
    this.pairs.add(pair);
    // During a partition the client's close is lost like its bytes: the upstream side stays open (half-open).
    client.on("error", () => (this.partitioned ? undefined : this.drop(pair)));
    client.on("close", () => (this.partitioned ? undefined : this.drop(pair)));
    if (this.partitioned) {
      client.on("data", () => undefined); // blackhole: read and discard
      return;
    }
    const upstream = new Socket();
    pair.upstream = upstream;
    upstream.on("error", () => this.drop(pair));
    upstream.on("close", () => this.drop(pair));
    upstream.connect(this.target.port, this.target.host);
    client.on("data", (chunk) => {
      if (!this.partitioned) upstream.write(chunk);
    });
    upstream.on("data", (chunk) => {
      if (!this.partitioned) client.write(chunk);
    });
    // Pairs opened before a partition stay in the set; heal() resets them.
  }

  private drop(pair: { client: Socket; upstream: Socket | undefined }): void {
    if (!this.pairs.delete(pair)) return;
    pair.client.destroy();
    pair.upstream?.destroy();
  }
}
