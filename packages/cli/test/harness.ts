import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import {
  Dispatcher,
  HttpInbound,
  ResourceLeaseDispatcherComponent,
  type ResourceLeaseQueue,
  type UnaryInboundMiddleware,
} from "@omnirelay/core";
import { type PeerEjectionOptions, PeerLeaseHealthTracker } from "@omnirelay/core/peers";
import { ResourceLeaseControlPlane } from "@omnirelay/diagnostics";
import { GrpcInbound } from "@omnirelay/transport-grpc";

export const cliDir = fileURLToPath(new URL("..", import.meta.url));
export const repoRoot = fileURLToPath(new URL("../../..", import.meta.url));
export const mainJs = fileURLToPath(new URL("../dist/main.js", import.meta.url));

/** What a CLI run gave back. */
export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `node dist/main.js …args` as a user would, asynchronously (the dispatcher may live in this process). */
export function cli(args: readonly string[], options: { env?: Record<string, string> } = {}): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, ...options.env };
    for (const k of ["OMNIRELAY_URL", "OMNIRELAY_TOKEN", "OMNIRELAY_CONTROL_URL"]) {
      if (!options.env || !(k in options.env)) delete env[k];
    }
    const child = spawn(process.execPath, [mainJs, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (c: Buffer) => {
      stdout += c.toString("utf8");
    });
    child.stderr.on("data", (c: Buffer) => {
      stderr += c.toString("utf8");
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}

/** Parses the single JSON document a `--json` run printed. */
export function json(run: CliRun): any {
  try {
    return JSON.parse(run.stdout);
  } catch {
    throw new Error(`not one JSON document (exit ${run.code}): ${run.stdout}\nstderr: ${run.stderr}`);
  }
}

/** A dispatcher in this process: resourcelease components, an HTTP inbound, optionally a gRPC inbound. */
export interface TestNode {
  readonly url: string;
  readonly grpcAddress?: string;
  readonly tracker: PeerLeaseHealthTracker;
  queue(namespace?: string): ResourceLeaseQueue;
  close(): Promise<void>;
}

/**
 * Starts a node; with `controlPlane` its HTTP inbound also serves `/omnirelay/control/*` from @omnirelay/diagnostics.
 */
export async function startNode(
  options: {
    namespaces?: readonly string[];
    grpc?: boolean;
    capacity?: number;
    middleware?: UnaryInboundMiddleware[];
    /** Mount the @omnirelay/diagnostics control plane on the HTTP inbound. */
    controlPlane?: boolean;
    /** Outlier ejection of the node's peer health tracker. */
    ejection?: PeerEjectionOptions;
  } = {},
): Promise<TestNode> {
  const dispatcher = new Dispatcher({ service: "cli-test", inboundMiddleware: options.middleware ?? [] });
  const tracker = new PeerLeaseHealthTracker({
    gracePeriodMs: 60_000,
    ...(options.ejection ? { ejection: options.ejection } : {}),
  });
  const components = (options.namespaces ?? ["resourcelease"]).map(
    (namespace, i) =>
      new ResourceLeaseDispatcherComponent(dispatcher, {
        namespace,
        ...(options.capacity ? { queueOptions: { capacity: options.capacity } } : {}),
        ...(i === 0 ? { healthTracker: tracker } : {}),
      }),
  );
  let controlPlane: ResourceLeaseControlPlane | undefined;
  if (options.controlPlane) {
    controlPlane = new ResourceLeaseControlPlane();
    for (const c of components) controlPlane.addComponent(c);
    controlPlane.addHealthProvider(tracker);
  }
  const inbound = new HttpInbound({ dispatcher, ...(controlPlane ? { fallback: controlPlane.handler() } : {}) });
  const { url } = await inbound.start();
  let grpc: GrpcInbound | undefined;
  let grpcAddress: string | undefined;
  if (options.grpc) {
    grpc = new GrpcInbound({ dispatcher });
    const { port } = await grpc.start();
    grpcAddress = `127.0.0.1:${port}`;
  }
  return {
    url,
    ...(grpcAddress ? { grpcAddress } : {}),
    tracker,
    queue(namespace = "resourcelease") {
      const c = components.find((x) => x.namespace === namespace);
      if (!c) throw new Error(`no namespace ${namespace}`);
      return c.queue;
    },
    async close() {
      await grpc?.close({ graceMs: 0 });
      await inbound.close({ graceMs: 0 });
      await controlPlane?.close();
      await Promise.all(components.map((c) => c.close()));
    },
  };
}
