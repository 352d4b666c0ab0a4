import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import {
  GrpcReplicationHubClient,
  type ReplicationHubSourceStatus,
  type ReplicationSourceId,
} from "@omnirelay/replicator-grpc";

const main = fileURLToPath(new URL("../dist/main.js", import.meta.url));

/** A running `omnirelay-hub` child process. */
export interface HubProcess {
  readonly child: ChildProcess;
  readonly grpcPort: number;
  readonly httpPort: number;
  /** Resolves with the exit code or signal once the process is gone. */
  readonly exited: Promise<number | string | null>;
  /** Everything the process wrote to stderr so far (its JSON log lines). */
  stderr(): string;
}

/** Spawns `node dist/main.js` and waits for its `listening` line. */
export function startHubProcess(options: {
  dataDir: string;
  grpcPort?: number;
  httpPort?: number;
  extraArgs?: readonly string[];
}): Promise<HubProcess> {
  return waitListening(
    spawn(
      process.execPath,
      [
        main,
        "--data-dir",
        options.dataDir,
        "--port",
        String(options.grpcPort ?? 0),
        "--http-port",
        String(options.httpPort ?? 0),
        ...(options.extraArgs ?? []),
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    ),
  );
}

/** Runs a shell command line (as a document shows it) in `cwd` and waits for the hub's `listening` line. */
export function startHubCommand(command: string, cwd: string): Promise<HubProcess> {
  return waitListening(spawn("bash", ["-c", `exec ${command}`], { cwd, stdio: ["ignore", "pipe", "pipe"] }));
}

async function waitListening(child: ChildProcess): Promise<HubProcess> {
  const exited = new Promise<number | string | null>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal)),
  );
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  const ready = await new Promise<{ grpcPort: number; httpPort: number }>((resolve, reject) => {
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const line = out.split("\n").find((l) => l.includes('"listening"'));
      if (line) resolve(JSON.parse(line) as { grpcPort: number; httpPort: number });
    });
    void exited.then((code) => reject(new Error(`hub exited (${String(code)}) before listening: ${stderr}`)));
  });
  return { child, grpcPort: ready.grpcPort, httpPort: ready.httpPort, exited, stderr: () => stderr };
}

/** GETs a path of the hub's HTTP side (or sends `init`, e.g. `{ method: "POST" }`). */
export async function hubHttp(
  port: number,
  path: string,
  init?: RequestInit,
): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, init);
  return { status: res.status, body: await res.text() };
}

/** Reads one gauge of the hub's /metrics for a source. */
export function metricValue(
  body: string,
  name: string,
  labels: { node_id: string; shard: string },
): number | undefined {
  const prefix = `${name}{node_id="${labels.node_id}",shard="${labels.shard}"} `;
  const line = body.split("\n").find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

/** Enqueue events `from`..`to`, each with `padBytes` of metadata. */
export function hubEvents(from: number, to: number, padBytes: number): ResourceLeaseReplicationEvent[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({
    sequenceNumber: from + i,
    eventType: "Enqueue" as const,
    timestamp: 1_700_000_000_000 + from + i,
    metadata: { pad: "x".repeat(padBytes) },
  }));
}

/** The hub's `/sources` list. */
export async function hubSources(httpPort: number): Promise<ReplicationHubSourceStatus[]> {
  return (JSON.parse((await hubHttp(httpPort, "/sources")).body) as { sources: ReplicationHubSourceStatus[] }).sources;
}

/** Every sequence number the hub holds for `source`, read with a client of its own. */
export async function readAllFromHub(port: number, source: ReplicationSourceId): Promise<number[]> {
  const client = new GrpcReplicationHubClient({ address: `127.0.0.1:${port}` });
  try {
    const out: number[] = [];
    for await (const e of client.subscribe({ source, follow: false })) out.push(e.sequenceNumber);
    return out;
  } finally {
    client.close();
  }
}
