import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "@nats-io/transport-node";

/** A free loopback TCP port. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address ? address.port : 0));
    });
  });
}

/** A private `nats-server` with JetStream and a monitoring port, for tests that need one of their own. */
export interface PrivateNatsServer {
  readonly url: string;
  readonly monitorUrl: string;
  stop(): Promise<void>;
}

const BINARY = existsSync("/usr/sbin/nats-server") ? "/usr/sbin/nats-server" : "nats-server";

/** Starts `nats-server -js -m <port>` on free loopback ports in a temporary directory and waits until it answers. */
export async function startNatsServer(): Promise<PrivateNatsServer> {
  const dir = await mkdtemp(join(tmpdir(), "omni-nats-"));
  const port = await freePort();
  const monitor = await freePort();
  const child: ChildProcess = spawn(
    BINARY,
    ["-a", "127.0.0.1", "-p", String(port), "-m", String(monitor), "-js", "-sd", dir, "-l", join(dir, "log")],
    { stdio: "ignore" },
  );
  const url = `nats://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((resolve) => child.once("exit", resolve));
      child.kill("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  };
  for (let attempt = 0; ; attempt++) {
    try {
      const nc = await connect({ servers: url, reconnect: false });
      await nc.close();
      break;
    } catch (error) {
      if (attempt > 100 || child.exitCode !== null) {
        await stop();
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return { url, monitorUrl: `http://127.0.0.1:${monitor}`, stop };
}
