import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  Dispatcher,
  HttpInbound,
  HttpOutbound,
  isOmniRelayError,
  ResourceLeaseClient,
  ResourceLeaseDispatcherComponent,
  type UnaryInboundMiddleware,
} from "../src/index.js";
import { makeTestPki } from "../src/testing/index.js";

const pkiDir = mkdtempSync(join(tmpdir(), "omnirelay-pki-"));
const pki = await makeTestPki(pkiDir, { clientCommonName: "worker-1" });
afterAll(() => rmSync(pkiDir, { recursive: true, force: true }));
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function start(requireClientCertificate: boolean) {
  const seen: Array<{ verified: boolean; subject?: string }> = [];
  const recorder: UnaryInboundMiddleware = {
    handle(req, next) {
      seen.push({
        verified: req.meta.security?.clientCertificateVerified ?? false,
        ...(req.meta.security?.clientCertificateSubject ? { subject: req.meta.security.clientCertificateSubject } : {}),
      });
      return next(req);
    },
  };
  const dispatcher = new Dispatcher({ service: "tls", inboundMiddleware: [recorder] });
  const component = new ResourceLeaseDispatcherComponent(dispatcher);
  const inbound = new HttpInbound({
    dispatcher,
    tls: {
      key: pki.server.key,
      cert: pki.server.cert,
      ca: pki.ca,
      requestClientCertificate: true,
      requireClientCertificate,
    },
  });
  const { url } = await inbound.start();
  closers.push(async () => {
    await inbound.close();
    await component.close();
  });
  const client = (tls: { cert?: string; key?: string }) => {
    const c = new ResourceLeaseClient({
      outbound: new HttpOutbound({ url, tls: { ca: pki.ca, ...tls } }),
      timeoutMs: 3000,
    });
    closers.push(() => c.close());
    return c;
  };
  return { url, seen, client };
}

describe("HTTPS with mutual TLS", () => {
  it("rejects a client without a certificate and one from another CA; accepts a good one", async () => {
    const s = await start(true);
    for (const tls of [{}, { cert: pki.otherClient.cert, key: pki.otherClient.key }]) {
      const err = await s
        .client(tls)
        .stats()
        .catch((e: unknown) => e);
      expect(isOmniRelayError(err) && err.status === "unavailable").toBe(true);
    }
    expect(s.seen).toHaveLength(0);
    const stats = await s.client({ cert: pki.client.cert, key: pki.client.key }).stats();
    expect(stats.state).toBe("running");
    expect(s.seen).toEqual([{ verified: true, subject: "worker-1" }]);
  });

  it("when certificates are optional, an unverified caller carries no certificate identity", async () => {
    const s = await start(false);
    await s.client({}).stats();
    await s.client({ cert: pki.otherClient.cert, key: pki.otherClient.key }).stats();
    expect(s.seen).toEqual([{ verified: false }, { verified: false }]);
  });
});
