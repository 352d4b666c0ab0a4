import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import type { ResourceLeaseReplicationEvent } from "../../contracts/events.js";
import { Dispatcher } from "../../dispatcher/dispatcher.js";
import { ErrorCodes } from "../../errors/codes.js";
import type { OmniRelayError } from "../../errors/omnirelay-error.js";
import { PrincipalBindingMiddleware } from "../../middleware/principal-binding.js";
import { ResourceLeaseClient } from "../../resourcelease/client.js";
import { ResourceLeaseDispatcherComponent } from "../../resourcelease/component.js";
import { makeTestPki } from "../../testing/index.js";
import { item } from "../../worker/test-helpers.js";
import { ResourceLeaseWorker } from "../../worker/worker.js";
import { HttpInbound } from "./inbound.js";
import { HttpOutbound } from "./outbound.js";

// Worker sessions over wss:// with mutual TLS: the verified client certificate is the session's principal, as it is
// for unary calls, and a client without one is refused at the upgrade.

const pkiDir = mkdtempSync(join(tmpdir(), "omnirelay-pki-"));
const pki = await makeTestPki(pkiDir, { clientCommonName: "worker-1" });
afterAll(() => rmSync(pkiDir, { recursive: true, force: true }));
const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function start() {
  const dispatcher = new Dispatcher({ service: "tls-session", inboundMiddleware: [new PrincipalBindingMiddleware()] });
  const events: ResourceLeaseReplicationEvent[] = [];
  const component = new ResourceLeaseDispatcherComponent(dispatcher, {
    queueOptions: { observers: [(e) => events.push(e)] },
  });
  const inbound = new HttpInbound({
    dispatcher,
    tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca, requestClientCertificate: true },
  });
  const { url } = await inbound.start();
  closers.push(async () => {
    await inbound.close({ graceMs: 100 });
    await component.close();
  });
  const client = (tls: { cert?: string; key?: string }) => {
    const c = new ResourceLeaseClient({
      outbound: new HttpOutbound({ url, tls: { ca: pki.ca, ...tls } }),
      caller: "w",
    });
    closers.push(() => c.close());
    return c;
  };
  return { client, events };
}

describe("worker sessions over HTTPS", () => {
  it("refuses a session without a client certificate (auth required)", async () => {
    const s = await start();
    const error = await new Promise<OmniRelayError>((resolve, reject) => {
      s.client({}).openSession({ onOpen: () => reject(new Error("accepted")), onFrame: () => {}, onClose: resolve });
    });
    expect(error).toMatchObject({ status: "unauthenticated", code: ErrorCodes.auth.required });
  });

  it("runs a worker whose certificate is the principal of every grant", async () => {
    const s = await start();
    const client = s.client({ cert: pki.client.cert, key: pki.client.key });
    await client.enqueueMany([1, 2, 3].map(item));
    const unaryLease = vi.spyOn(client, "lease");
    const worker = new ResourceLeaseWorker({ client, peerId: "worker-a", concurrency: 2, handler: async () => {} });
    closers.push(() => worker.close({ graceMs: 100 }));
    worker.start();
    await expect.poll(() => worker.stats().completed).toBe(3);
    const granted = s.events.filter((e) => e.eventType === "LeaseGranted");
    expect(granted.map((e) => [e.peerId, e.principal])).toEqual([
      ["worker-a", "worker-1"],
      ["worker-a", "worker-1"],
      ["worker-a", "worker-1"],
    ]);
    expect(worker.stats().errors).toBe(0);
    expect(unaryLease).not.toHaveBeenCalled(); // over the wss:// session
  });
});
