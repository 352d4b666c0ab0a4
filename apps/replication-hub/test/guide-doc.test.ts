import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { ResourceLeaseReplicationEvent } from "@omnirelay/core";
import { ErrorCodes } from "@omnirelay/core";
import { makeTestPki, type TestPki } from "@omnirelay/core/testing";
import {
  GrpcReplicationHubClient,
  GrpcResourceLeaseReplicator,
  type GrpcResourceLeaseReplicatorOptions,
} from "@omnirelay/replicator-grpc";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { type HubProcess, hubHttp, startHubCommand } from "./hub-process.js";

const root = resolve(import.meta.dirname, "../../..");
const guide = readFileSync(join(root, "docs/guides/grpc-hub.md"), "utf8");

/** A `bash` block of the guide that runs the hub: its command line and the outcome its comment promises. */
interface DocCommand {
  readonly command: string;
  readonly comment: string;
}

const hubCommands: DocCommand[] = [...guide.matchAll(/```bash\n([\s\S]*?)```/g)]
  .map((m) => m[1]!.replace(/\\\n\s*/g, " ").split("\n"))
  .filter((lines) => lines.some((l) => l.includes("apps/replication-hub/dist/main.js")))
  .map((lines) => ({
    command: lines.find((l) => l.startsWith("node "))!.trim(),
    comment:
      lines
        .find((l) => l.startsWith("# "))
        ?.slice(2)
        .trim() ?? "",
  }));

let work: string;
let pki: TestPki; // CA 1: the hub's certificate and CN=billing-1
let other: TestPki; // CA 2 (trusted too, through the bundle): CN=reporting-batch-job
const secret = "hub-jwt-secret-for-the-guide-test";

beforeAll(async () => {
  work = mkdtempSync(join(tmpdir(), "omnirelay-hub-guide-"));
  mkdirSync(join(work, "pki1"));
  mkdirSync(join(work, "pki2"));
  [pki, other] = await Promise.all([
    makeTestPki(join(work, "pki1"), { clientCommonName: "billing-1" }),
    makeTestPki(join(work, "pki2"), { clientCommonName: "reporting-batch-job" }),
  ]);
  // The file names the guide uses, in the directory the commands run in; `apps` is the repository's.
  writeFileSync(join(work, "hub.crt"), pki.server.cert);
  writeFileSync(join(work, "hub.key"), pki.server.key);
  writeFileSync(join(work, "ca.crt"), `${pki.ca}${other.ca}`);
  writeFileSync(join(work, "hub-jwt.secret"), `${secret}\n`); // as `echo` writes it
  symlinkSync(join(root, "apps"), join(work, "apps"));
});

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

let runs = 0;
/** The guide's command on free ports and a fresh data directory. */
function runnable(command: string): string {
  const dataDir = join(work, `data-${++runs}`);
  return command
    .replace(/--port 7950\b/, "--port 0")
    .replace(/--http-port 7951\b/, "--http-port 0")
    .replace(/--data-dir \S+/, `--data-dir ${dataDir}`);
}

async function startDocHub(command: string): Promise<HubProcess> {
  const hub = await startHubCommand(runnable(command), work);
  cleanup.push(async () => {
    hub.child.kill("SIGTERM");
    await hub.exited;
  });
  return hub;
}

function events(from: number, to: number): ResourceLeaseReplicationEvent[] {
  return Array.from({ length: to - from + 1 }, (_, i) => ({
    sequenceNumber: from + i,
    eventType: "Enqueue" as const,
    timestamp: 1_700_000_000_000 + from + i,
    metadata: {},
  }));
}

function replicator(options: Omit<GrpcResourceLeaseReplicatorOptions, "connectTimeoutMs" | "ackTimeoutMs">) {
  const r = new GrpcResourceLeaseReplicator({
    connectTimeoutMs: 5000,
    ackTimeoutMs: 5000,
    reconnectInitialDelayMs: 20,
    reconnectMaxDelayMs: 200,
    ...options,
  });
  cleanup.push(() => r.close());
  return r;
}

async function until(predicate: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

function hs256(claims: Record<string, unknown>, key = secret): string {
  const b64 = (v: string) => Buffer.from(v).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64(JSON.stringify({ iat: now, exp: now + 600, ...claims }))}`;
  return `${input}.${createHmac("sha256", key).update(input).digest("base64url")}`;
}

const find = (flag: string) => hubCommands.find((c) => c.command.includes(flag));

describe("docs/guides/grpc-hub.md", () => {
  it("shows the secure hub, the JWT hub, the trusted-network hub and the refusal to start without identities", () => {
    expect(find("--require-client-cert")?.comment).toContain('"event":"listening"');
    expect(find("--jwt-secret-file")?.comment).toContain('"event":"listening"');
    expect(find("--allow-unauthenticated")?.comment).toContain('"event":"listening"');
    expect(hubCommands.filter((c) => c.comment.startsWith("omnirelay-hub:"))).toHaveLength(1);
    expect(hubCommands).toHaveLength(4);
  });

  it("the mutual-TLS command binds node ids to certificates and grants reporting-batch-job its reads", async () => {
    const doc = find("--require-client-cert")!;
    const hub = await startDocHub(doc.command);
    const address = `localhost:${hub.grpcPort}`;
    const real = replicator({
      hubs: [address],
      nodeId: "billing-1",
      tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key },
    });
    await real.publish(events(1, 3));

    const impostor = replicator({
      hubs: [address],
      nodeId: "billing-1",
      tls: { ca: pki.ca, cert: other.client.cert, key: other.client.key },
    });
    const forged = impostor.publish(events(4, 6)).catch((e: unknown) => e);
    await until(() => impostor.lag().lastError?.code === ErrorCodes.replicationHub.permissionDenied);
    await impostor.close();
    expect(await forged).toMatchObject({ code: ErrorCodes.replicationHub.closed });

    // --grant-subscribe reporting-batch-job=billing-1,billing-2: the same identity may read billing-1.
    const reader = new GrpcReplicationHubClient({
      address,
      tls: { ca: pki.ca, cert: other.client.cert, key: other.client.key },
    });
    cleanup.push(() => reader.close());
    const read: number[] = [];
    for await (const e of reader.subscribe({ source: { nodeId: "billing-1", shard: "" }, follow: false })) {
      read.push(e.sequenceNumber);
    }
    expect(read).toEqual([1, 2, 3]);

    const sources = JSON.parse((await hubHttp(hub.httpPort, "/sources")).body) as {
      sources: Array<{ nodeId: string; lastSequence: number }>;
    };
    expect(sources.sources.map((s) => [s.nodeId, s.lastSequence])).toEqual([["billing-1", 3]]);
    const metrics = (await hubHttp(hub.httpPort, "/metrics")).body;
    expect(metrics).toMatch(
      /^omnirelay_replication_hub_denied_calls_total\{rpc="publish",reason="permission_denied"\} [1-9]\d*$/m,
    );
    const refusals = hub
      .stderr()
      .split("\n")
      .filter(Boolean)
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((l) => l.msg === "replication hub refused a call");
    expect(refusals[0]).toMatchObject({
      level: "warn",
      rpc: "publish",
      reason: "permission_denied",
      caller: "reporting-batch-job",
      source: "billing-1",
    });
  });

  it("the JWT command takes a token's subject as the identity and checks its issuer", async () => {
    const doc = find("--jwt-secret-file")!;
    const issuer = /--jwt-issuer (\S+)/.exec(doc.command)?.[1];
    expect(issuer).toBeDefined();
    const hub = await startDocHub(doc.command);
    const address = `localhost:${hub.grpcPort}`;
    const good = replicator({
      hubs: [address],
      nodeId: "billing-1",
      tls: { ca: pki.ca, bearerToken: () => hs256({ sub: "billing-1", iss: issuer }) },
    });
    await good.publish(events(1, 2));
    await good.close();
    const wrongIssuer = replicator({
      hubs: [address],
      nodeId: "billing-1",
      tls: { ca: pki.ca, bearerToken: hs256({ sub: "billing-1", iss: "https://elsewhere" }) },
    });
    void wrongIssuer.publish(events(3, 3)).catch(() => undefined);
    await until(() => wrongIssuer.lag().lastError?.code === "omnirelay.auth.invalid_token");
    expect(wrongIssuer.lag().lastError?.status).toBe("unauthenticated");
    const checkpoint = JSON.parse((await hubHttp(hub.httpPort, "/sources")).body) as {
      sources: Array<{ lastSequence: number }>;
    };
    expect(checkpoint.sources.map((s) => s.lastSequence)).toEqual([2]);
  });

  it("the trusted-network command serves callers without an identity", async () => {
    const hub = await startDocHub(find("--allow-unauthenticated")!.command);
    const r = replicator({ hubs: [`127.0.0.1:${hub.grpcPort}`], nodeId: "dev-node" });
    await r.publish(events(1, 2));
    expect(r.lag()).toMatchObject({ ackedSequence: 2, pendingEvents: 0 });
  });

  it("without identities or --allow-unauthenticated the hub refuses to start, with the message the guide shows", async () => {
    const doc = hubCommands.find((c) => c.comment.startsWith("omnirelay-hub:"))!;
    const child = spawn("bash", ["-c", `exec ${runnable(doc.command)}`], { cwd: work });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const code = await new Promise<number | null>((r) => child.once("exit", r));
    expect(code).toBe(1);
    expect(stderr.trim()).toBe(doc.comment);
  });
});
