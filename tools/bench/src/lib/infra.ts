/** What the benchmark starts around the systems: a private redis-server, a scratch PostgreSQL database, ports. */
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { createConnection, createServer } from "node:net";
import { connectPg } from "./pg.js";

/** A free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * CPU time of a process in µs: the time each of its threads has run (`/proc/<pid>/task/<tid>/schedstat`, in ns, so a
 * short run still counts exactly); undefined when the process has gone. A thread that ended meanwhile takes its time
 * with it (the processes measured here keep theirs).
 */
export function cpuMicrosOf(pid: number): number | undefined {
  let ns = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // the thread ended meanwhile
      }
    }
  } catch {
    return undefined;
  }
  return ns / 1000;
}

/** Pids of the running processes whose command is `name` (the machine's `postgres` backends, say). */
export function pidsNamed(name: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/comm`, "utf8").trim() === name) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** Resident set size of a process in bytes, from /proc (undefined when unreadable). */
export function rssOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Sends a raw RESP command and resolves with the first reply line. */
function redisCommand(port: number, command: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("error", reject);
    socket.once("data", (data) => {
      socket.destroy();
      resolve(data.toString().split("\r\n")[0] ?? "");
    });
    socket.write(`*${command.length}\r\n${command.map((c) => `$${Buffer.byteLength(c)}\r\n${c}\r\n`).join("")}`);
  });
}

/** A private redis-server with append-only persistence (`appendfsync everysec`), no RDB snapshots. */
export class PrivateRedis {
  private proc: ChildProcess | undefined;
  constructor(
    readonly port: number,
    private readonly dir: string,
  ) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  /** Starts redis-server and resolves with the milliseconds until it answered PING (it loads its AOF first). */
  async start(): Promise<number> {
    const started = performance.now();
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--appendonly", "yes"];
    args.push("--appendfsync", "everysec", "--save", "", "--dir", this.dir, "--maxmemory-policy", "noeviction");
    this.proc = spawn("redis-server", args, { stdio: "ignore" });
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        if ((await redisCommand(this.port, ["PING"])) === "+PONG") return performance.now() - started;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error("redis-server did not start");
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** SHUTDOWN (the AOF is flushed) and waits for the process to exit. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    // SHUTDOWN has no reply: the server closes the connection, so wait for the exit, not for an answer.
    void redisCommand(this.port, ["SHUTDOWN"]).catch(() => undefined);
    const timer = setTimeout(() => proc.kill("SIGKILL"), 30_000);
    await exited;
    clearTimeout(timer);
  }

  /** FLUSHALL. */
  async flush(): Promise<void> {
    await redisCommand(this.port, ["FLUSHALL"]);
  }
}

/** Creates database `name` on the local PostgreSQL; resolves with its connection string. */
export async function createDatabase(adminUrl: string, name: string): Promise<string> {
  const admin = await connectPg(adminUrl);
  try {
    await admin.query(`drop database if exists ${name}`);
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** Drops database `name` (forcing out leftover sessions). */
export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  const admin = await connectPg(adminUrl);
  try {
    await admin.query(`drop database if exists ${name} with (force)`);
  } finally {
    await admin.end();
  }
}
