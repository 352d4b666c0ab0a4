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

/** One server of a {@link NatsCluster}. */
export interface ClusterServer {
  readonly name: string;
  readonly url: string;
  readonly process: ChildProcess;
}

/** A private three-server JetStream cluster on loopback. */
export interface NatsCluster {
  readonly servers: readonly ClusterServer[];
  /** Every client URL. */
  readonly urls: string[];
  /** Stops every server still running and removes their directories. */
  stop(): Promise<void>;
}

/**
 * Starts `size` `nats-server`s with JetStream as one cluster (free client and route ports, a directory each), and
 * waits until JetStream answers through the first (a metadata leader was elected).
 */
export async function startNatsCluster(size = 3): Promise<NatsCluster> {
  const dir = await mkdtemp(join(tmpdir(), "omni-nats-cluster-"));
  const ports = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routes = await Promise.all(Array.from({ length: size }, () => freePort()));
  const routeList = routes.map((p) => `nats://127.0.0.1:${p}`).join(",");
  const servers = ports.map((port, i) => {
    const name = `n${i + 1}`;
    const args = ["-a", "127.0.0.1", "-p", String(port), "-n", name, "-js", "-sd", join(dir, name)];
    args.push("--cluster_name", "omni", "--cluster", `nats://127.0.0.1:${routes[i]}`, "--routes", routeList);
    args.push("-l", join(dir, `${name}.log`));
    return { name, url: `nats://127.0.0.1:${port}`, process: spawn(BINARY, args, { stdio: "ignore" }) };
  });
  const stop = async () => {
    await Promise.all(
      servers.map(async (s) => {
        if (s.process.exitCode !== null || s.process.signalCode !== null) return;
        const exited = new Promise((resolve) => s.process.once("exit", resolve));
        s.process.kill("SIGKILL");
        await exited;
      }),
    );
    await rm(dir, { recursive: true, force: true });
  };
  const urls = servers.map((s) => s.url);
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const nc = await connect({ servers: urls, reconnect: false });
      try {
        const { jetstreamManager } = await import("@nats-io/jetstream");
        await (await jetstreamManager(nc, { timeout: 2000 })).getAccountInfo();
        break;
      } finally {
        await nc.close();
      }
    } catch (error) {
      if (Date.now() > deadline) {
        await stop();
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  return { servers, urls, stop };
}
