import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Dispatcher, HttpInbound, ResourceLeaseDispatcherComponent } from "@omnirelay/core";
import { PeerLeaseHealthTracker } from "@omnirelay/core/peers";
import { ResourceLeaseControlPlane } from "@omnirelay/diagnostics";
import { GrpcInbound } from "@omnirelay/transport-grpc";
import { publishedPackages, repoRoot } from "./readme.js";

/**
 * A folder of shims named after the published commands (`omnirelay`, `omnirelay-hub`), each running the built
 * `dist/main.js` of its package, as `npm install -g` would put them on PATH.
 * @throws Error when a package is not built.
 */
export function commandShims(dir: string): string {
  mkdirSync(dir, { recursive: true });
  for (const pkg of publishedPackages) {
    if (!pkg.bin) continue;
    const main = join(repoRoot, pkg.dir, "dist", "main.js");
    if (!existsSync(main)) throw new Error(`${main} is missing: run \`pnpm run build\` first`);
    writeFileSync(join(dir, pkg.bin), `#!/usr/bin/env bash\nexec '${process.execPath}' '${main}' "$@"\n`, {
      mode: 0o755,
    });
  }
  return dir;
}

/** A dispatcher serving the default namespace over HTTP (with the control plane mounted) and gRPC. */
export interface LiveDispatcher extends AsyncDisposable {
  readonly httpUrl: string;
  /** `host:port` of the gRPC inbound. */
  readonly grpcAddress: string;
}

/** Starts a dispatcher as the CLI README expects one: HTTP and gRPC on free loopback ports, diagnostics mounted. */
export async function startDispatcher(): Promise<LiveDispatcher> {
  const dispatcher = new Dispatcher({ service: "docs-check" });
  const tracker = new PeerLeaseHealthTracker();
  const component = new ResourceLeaseDispatcherComponent(dispatcher, { healthTracker: tracker });
  const control = new ResourceLeaseControlPlane();
  control.addComponent(component);
  control.addHealthProvider(tracker);
  const http = new HttpInbound({ dispatcher, fallback: control.handler() });
  const grpc = new GrpcInbound({ dispatcher, shutdownGraceMs: 500 });
  dispatcher.addComponent(control);
  await dispatcher.start();
  return {
    httpUrl: http.url,
    grpcAddress: `127.0.0.1:${grpc.port}`,
    [Symbol.asyncDispose]: () => dispatcher.stop(),
  };
}

/** A command started in the background, with what it printed so far. */
export interface BackgroundProcess extends AsyncDisposable {
  readonly child: ChildProcess;
  /** Everything written to stdout so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves with the first stdout line that matches, or rejects when the process exits or time runs out. */
  waitForLine(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

/** Starts `bash -c script` in `cwd` with `env` added; disposing it sends SIGTERM and waits for the exit. */
export function startBackground(script: string, options: { cwd: string; env: Record<string, string> }) {
  const child = spawn("bash", ["-c", script], {
    cwd: options.cwd,
    env: { ...process.env, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  const exited = new Promise<void>((resolve) => child.on("exit", () => resolve()));
  child.stdout.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on("data", (d: Buffer) => {
    err += d.toString();
  });
  const waitForLine = async (pattern: RegExp, timeoutMs = 15_000): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = out.split("\n").find((l) => pattern.test(l));
      if (line !== undefined) return line;
      if (child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`no line matching ${pattern} (exit ${child.exitCode}):\n${out}\n${err}`);
      }
      await new Promise((r) => setTimeout(r, 25));
    }
  };
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    await exited;
  };
  return {
    child,
    stdout: () => out,
    stderr: () => err,
    waitForLine,
    [Symbol.asyncDispose]: stop,
  } satisfies BackgroundProcess;
}
