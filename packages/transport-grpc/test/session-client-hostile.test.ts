import { Metadata, Server, ServerCredentials, type ServerDuplexStream, type ServiceDefinition } from "@grpc/grpc-js";
import { ErrorCodes, ResourceLeaseClient, ResourceLeaseWorker, type ResourceLeaseWorkerEvent } from "@omnirelay/core";
import { afterEach, describe, expect, it } from "vitest";
import { ResourceLeaseServiceService as S } from "../src/gen/omnirelay/resourcelease/v1/resourcelease.js";
import { GrpcOutbound } from "../src/index.js";

// A worker's gRPC session against a hand-written hostile server (a raw grpc-js server on 127.0.0.1 speaking the
// Session rpc's protobuf frames): one that never sends its initial metadata, one that sends an `error` frame (the
// last frame) and then a grant without ending the call, and one that grants a lease twice.

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const until = async (ok: () => boolean, ms = 3000) => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
};

type Call = ServerDuplexStream<Buffer, Buffer>;
interface ClientFrame {
  credit?: number;
  complete?: Array<{ id: number }>;
}

const grant = (seq: number) => ({
  payload: { resourceType: "t", resourceId: `r${seq}`, partitionKey: "p", payloadEncoding: "json", attributes: {} },
  sequenceId: seq,
  attempt: 1,
  enqueuedAt: new Date().toISOString(),
  ownershipToken: { sequenceId: seq, attempt: 1, leaseId: `l${seq}`, fencingToken: seq },
  leaseExpiresAt: new Date(Date.now() + 30_000).toISOString(),
});
const frame = (f: Record<string, unknown>) => S.session.responseSerialize({ grants: [], results: [], ...f } as never);
const read = (data: Buffer) => S.session.requestDeserialize(data) as unknown as ClientFrame;

/** A raw Session server; counts calls and the calls the client cancelled. */
async function sessionServer(onCall: (call: Call) => void) {
  const stats = { calls: 0, cancelled: 0 };
  const server = new Server();
  const id = (b: Buffer) => b;
  const definition = {
    Session: {
      path: S.session.path,
      requestStream: true,
      responseStream: true,
      requestSerialize: id,
      requestDeserialize: id,
      responseSerialize: id,
      responseDeserialize: id,
    },
  } as unknown as ServiceDefinition;
  server.addService(definition, {
    Session: (call: Call) => {
      stats.calls++;
      call.on("error", () => {});
      call.on("cancelled", () => stats.cancelled++);
      onCall(call);
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  cleanups.push(() => server.forceShutdown());
  return { address: `127.0.0.1:${port}`, stats };
}

function startWorker(address: string, handler: () => Promise<void>, sessionOpenTimeoutMs?: number) {
  const client = new ResourceLeaseClient({ outbound: new GrpcOutbound({ address }), timeoutMs: 2000 });
  const events: ResourceLeaseWorkerEvent[] = [];
  const worker = new ResourceLeaseWorker({
    client,
    peerId: "w1",
    handler,
    concurrency: 4,
    leaseRetry: { initialDelayMs: 10, maxDelayMs: 50 },
    onError: (e) => events.push(e),
    ...(sessionOpenTimeoutMs ? { sessionOpenTimeoutMs } : {}),
  }).start();
  cleanups.push(async () => {
    await worker.close({ graceMs: 100 });
    await client.close();
  });
  return { worker, events };
}

const errorOf = (e: ResourceLeaseWorkerEvent | undefined) =>
  e?.type === "error" ? { operation: e.operation, status: e.error.status, code: e.error.code } : undefined;

describe("gRPC worker session against a hostile server", () => {
  it("cancels a Session call whose initial metadata never comes after sessionOpenTimeoutMs, then opens another", async () => {
    const server = await sessionServer((call) => call.on("data", () => {}));
    const { events } = startWorker(server.address, async () => {}, 150);
    await until(() => server.stats.calls >= 2 && server.stats.cancelled >= 1, 2000);
    expect(errorOf(events[0])).toEqual({
      operation: "lease",
      status: "deadline-exceeded",
      code: ErrorCodes.rpc.deadlineExceeded,
    });
  });

  it("ends the session at an error frame: cancels the call, runs no grant sent after it, opens a new session", async () => {
    let framesAfterError = 0;
    const server = await sessionServer((call) => {
      call.sendMetadata(new Metadata());
      let erred = false;
      call.on("data", (data: Buffer) => {
        if (erred) {
          framesAfterError++;
          return;
        }
        if (!read(data).credit) return;
        erred = true;
        call.write(frame({ error: { status: "UNAVAILABLE", code: "omnirelay.test.bye", message: "bye" } }));
        call.write(frame({ grants: [grant(1)] })); // after the last frame; the call is not ended
      });
    });
    let handled = 0;
    const { events } = startWorker(server.address, async () => {
      handled++;
    });
    await until(() => server.stats.calls >= 2 && server.stats.cancelled >= 1, 2000);
    expect(handled).toBe(0);
    expect(framesAfterError).toBe(0);
    expect(errorOf(events[0])).toEqual({ operation: "lease", status: "unavailable", code: "omnirelay.test.bye" });
  });

  it("runs the handler once for a lease granted twice in one frame", async () => {
    let completes = 0;
    const server = await sessionServer((call) => {
      call.sendMetadata(new Metadata());
      let sent = false;
      call.on("data", (data: Buffer) => {
        const f = read(data);
        if (f.credit && !sent) {
          sent = true;
          call.write(frame({ grants: [grant(5), grant(5)] }));
        }
        for (const op of f.complete ?? []) {
          completes++;
          call.write(frame({ results: [{ id: op.id }] }));
        }
      });
    });
    let running = 0;
    let maxRunning = 0;
    let handled = 0;
    const { worker } = startWorker(server.address, async () => {
      handled++;
      maxRunning = Math.max(maxRunning, ++running);
      await new Promise((resolve) => setTimeout(resolve, 100));
      running--;
    });
    await until(() => worker.stats().completed >= 1);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(handled).toBe(1);
    expect(maxRunning).toBe(1);
    expect(completes).toBe(1);
    expect(worker.stats()).toMatchObject({ leased: 1, completed: 1 });
  });
});
