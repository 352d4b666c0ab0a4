import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { exposureNotice, forwardedFlags, type MeshDemoConfig, shardNamespace } from "./config.js";
import { createDemoNetwork, type DemoNetwork, withHost } from "./netns.js";

interface Child {
  readonly name: string;
  readonly process: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stopping: boolean;
}

const levels: Record<number, string> = { 10: "TRACE", 20: "DEBUG", 30: "INFO", 40: "WARN", 50: "ERROR", 60: "FATAL" };

/** One pino JSON line as a short human line; anything else as is. */
export function formatLogLine(name: string, line: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return `[${name}] ${line}`;
  }
  const { level, time, msg, pid: _pid, hostname: _host, roles: _roles, ...rest } = entry;
  const when = typeof time === "number" ? new Date(time).toISOString().slice(11, 19) : "";
  const fields = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : "";
  return `${when} [${name}] ${levels[level as number] ?? String(level)} ${String(msg ?? "")}${fields}`;
}

function forward(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const [flag, inline] = arg.startsWith("--") ? arg.slice(2).split(/=(.*)/s, 2) : [undefined, undefined];
    if (flag && (forwardedFlags as readonly string[]).includes(flag)) {
      if (inline !== undefined) out.push(arg);
      else if (i + 1 < argv.length) out.push(arg, argv[++i] as string);
    }
  }
  return out;
}

/**
 * Starts a local mesh as separate processes — dispatcher+diagnostics (serving the queue over HTTP and gRPC), a seeder
 * and two workers (mesh-worker-a over HTTP, mesh-worker-b over gRPC) — prints the URLs and
 * the children's logs, and on SIGINT/SIGTERM stops them in order (workers and seeder first, the dispatcher last).
 * Children run in their own process group (so Ctrl-C reaches only the launcher) and stop when its stdin pipe closes,
 * so they never outlive the launcher. Resolves with the exit code.
 */
export async function launchMesh(config: MeshDemoConfig, argv: readonly string[]): Promise<number> {
  const script = process.argv[1] as string;
  const common = [...forward(argv), "--data-dir", config.dataDir];
  const children: Child[] = [];
  let stopping = false;
  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((resolve) => {
    resolveDone = resolve;
  });
  const say = (text: string) => process.stdout.write(`${text}\n`);

  let network: DemoNetwork | undefined;
  const start = (name: string, args: string[]): Child => {
    const argv = [process.execPath, script, ...args, ...common];
    // --netns: a worker runs in its own namespace (`ip netns exec` execs, so the pid is the worker's own).
    const run = network?.namespaces.has(name) ? network.exec(name, argv) : { command: argv[0], args: argv.slice(1) };
    const proc = spawn(run.command as string, run.args, {
      stdio: ["pipe", "pipe", "pipe"],
      detached: true,
      env: { ...process.env, MESH_DEMO_SUPERVISED: "1" },
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      proc.once("exit", (code, signal) => resolve({ code, signal })),
    );
    for (const stream of [proc.stdout, proc.stderr]) {
      if (stream) createInterface({ input: stream }).on("line", (line) => say(formatLogLine(name, line)));
    }
    proc.stdin?.on("error", () => {});
    const child: Child = { name, process: proc, exited, stopping: false };
    children.push(child);
    say(`[launcher] started ${name} pid=${proc.pid}`);
    void exited.then(({ code, signal }) => {
      if (child.stopping || stopping) return;
      say(`[launcher] ${name} exited unexpectedly (${signal ?? `code ${code}`})`);
      // One dispatcher: the mesh cannot go on without it. Several nodes on JetStream: the others take its shards.
      if (name === "dispatcher") void stop(1);
      else if (name.startsWith("node-"))
        say(`[launcher] the other nodes take ${name}'s shards within the ownership TTL`);
    });
    return child;
  };

  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say("[launcher] stopping the mesh…");
    const order = [...children].reverse();
    for (const child of order) {
      child.stopping = true;
      if (child.process.exitCode === null && child.process.signalCode === null) child.process.kill("SIGTERM");
      const timer = new AbortController();
      const result = await Promise.race([
        child.exited,
        sleep(10_000, undefined, { signal: timer.signal }).then(
          () => undefined,
          () => undefined,
        ),
      ]);
      timer.abort();
      if (result === undefined) {
        say(`[launcher] ${child.name} did not stop in 10 s; killing it`);
        child.process.kill("SIGKILL");
        await child.exited;
      }
    }
    network?.destroy();
    say(`[launcher] stopped; state is kept in ${config.dataDir}`);
    resolveDone(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));

  if (config.log.kind === "jetstream") {
    const nodes = meshNodes(config);
    for (const node of nodes) {
      start(node.name, [
        ...["--roles", "dispatcher,diagnostics", "--node-id", node.name],
        ...["--rpc-url", node.rpcUrl, "--http-url", node.httpUrl],
      ]);
    }
    for (const node of nodes) {
      if (!(await waitReady(`${node.httpUrl}/readyz`, 60_000, () => stopping))) {
        if (!stopping) say(`[launcher] ${node.name} did not become ready in 60 s`);
        await stop(1);
        return done;
      }
    }
    const endpoints = ["--endpoints", nodes.map((n) => n.rpcUrl).join(",")];
    start("seeder", ["--roles", "seeder", ...endpoints]);
    start("worker-a", ["--roles", "worker", "--worker-peer-id", "mesh-worker-a", ...endpoints]);
    start("worker-b", ["--roles", "worker", "--worker-peer-id", "mesh-worker-b", ...endpoints]);
    say("");
    say(`OmniRelay mesh is running: ${nodes.length} dispatcher nodes on JetStream (${config.log.servers.join(", ")})`);
    for (const node of nodes) say(`  ${node.name}       live page ${node.httpUrl}/   RPC ${node.rpcUrl}`);
    say(`  shards       ${config.shards.join(", ")} (spread over the nodes; a killed node's shards move)`);
    say(`  JetStream    stream ${config.jetstreamPrefix}_LOG, buckets ${config.jetstreamPrefix}_OWNERS, …`);
    say("Press Ctrl-C to stop; starting again resumes from JetStream.");
    say("");
    return done;
  }
  let rpcUrl = config.rpcUrl;
  let grpcUrl = config.grpcUrl ?? "http://127.0.0.1:7421";
  if (config.netns) {
    try {
      network = createDemoNetwork(new URL(rpcUrl).port || "80", ["worker-a", "worker-b"]);
    } catch (error) {
      say(`[launcher] ${(error as Error).message}`);
      return 2;
    }
    rpcUrl = withHost(rpcUrl, network.hostIp);
    grpcUrl = withHost(grpcUrl, network.hostIp);
  }
  const rpc = ["--rpc-url", rpcUrl];
  start("dispatcher", [
    "--roles",
    "dispatcher,diagnostics",
    "--http-url",
    config.httpUrl,
    "--grpc-url",
    grpcUrl,
    ...rpc,
  ]);
  const ready = await waitReady(`${config.httpUrl}/readyz`, 30_000, () => stopping);
  if (!ready) {
    if (!stopping) say("[launcher] the dispatcher did not become ready in 30 s");
    await stop(1);
    return done;
  }
  start("seeder", ["--roles", "seeder", ...rpc]);
  start("worker-a", ["--roles", "worker", "--worker-peer-id", "mesh-worker-a", ...rpc]);
  // worker-b takes the queue over gRPC, so the mesh shows both transports.
  start("worker-b", [
    "--roles",
    "worker",
    "--worker-peer-id",
    "mesh-worker-b",
    "--transport",
    "grpc",
    "--grpc-url",
    grpcUrl,
    ...rpc,
  ]);
  const procedures = config.shards.map((s) => `${shardNamespace(config, s)}::*`).join(", ");
  say("");
  say("OmniRelay mesh is running:");
  say(`  live page    ${config.httpUrl}/`);
  say(`  metrics      ${config.httpUrl}/metrics`);
  say(`  demo API     ${config.httpUrl}/demo/catalogs  /demo/lease-health  /demo/replication  /demo/backpressure`);
  say(`  RPC          ${rpcUrl}  (${procedures})`);
  say(`  gRPC         ${grpcUrl}  (the same queue procedures; mesh-worker-b uses it)`);
  say(`  data         ${config.dataDir}`);
  say(`  access       ${exposureNotice({ ...config, rpcUrl, grpcUrl }).message}`);
  if (network) {
    const where = [...network.namespaces].map(([name, ns]) => `${name} in ${ns}`).join(", ");
    say(`  namespaces   ${where}; tools/mesh-chaos.sh --partition worker|grpc cuts their links`);
  }
  say("Press Ctrl-C to stop; starting again resumes from the SQLite files.");
  say("");
  return done;
}

/** The dispatcher nodes of the JetStream mode: node-1 on --rpc-url/--http-url, node-2 on the next ports, … */
export function meshNodes(config: Pick<MeshDemoConfig, "rpcUrl" | "httpUrl" | "nodes">) {
  const at = (base: string, i: number) => {
    const url = new URL(base);
    url.port = String(Number(url.port || 80) + i);
    return url.origin;
  };
  return Array.from({ length: config.nodes }, (_, i) => ({
    name: `node-${i + 1}`,
    rpcUrl: at(config.rpcUrl, i),
    httpUrl: at(config.httpUrl, i),
  }));
}

async function waitReady(url: string, timeoutMs: number, cancelled: () => boolean): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && !cancelled()) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      await res.arrayBuffer();
      if (res.ok) return true;
    } catch {
      // not up yet
    }
    await sleep(200);
  }
  return false;
}
