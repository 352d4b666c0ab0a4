import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import {
  AuthorizationMiddleware,
  Dispatcher,
  HttpInbound,
  HttpOutbound,
  isOmniRelayError,
  PrincipalBindingMiddleware,
  ResourceLeaseClient,
  ResourceLeaseDispatcherComponent,
} from "../src/index.js";
import { makeTestPki } from "../src/testing/index.js";

const pki = await makeTestPki(mkdtempSync(join(tmpdir(), "omnirelay-pki-")), { clientCommonName: "worker-1" });
const secret = new TextEncoder().encode("a-test-secret-of-at-least-32-bytes!!");
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

/** A dispatcher that binds principals and only lets `worker-1` and `svc-a` lease; enqueue needs any principal. */
async function start(tls: boolean) {
  const dispatcher = new Dispatcher({
    service: "auth",
    inboundMiddleware: [
      new PrincipalBindingMiddleware({ jwt: { key: secret, issuer: "omnirelay-test" }, trustedProxies: ["10.9.9.9"] }),
      new AuthorizationMiddleware({
        rules: [
          { principals: ["worker-1", "svc-a"], procedures: ["resourcelease::*"] },
          { principals: ["*"], procedures: ["resourcelease::enqueue", "resourcelease::stats"] },
        ],
      }),
    ],
  });
  const component = new ResourceLeaseDispatcherComponent(dispatcher);
  const inbound = new HttpInbound({
    dispatcher,
    ...(tls ? { tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca, requestClientCertificate: true } } : {}),
  });
  const { url } = await inbound.start();
  closers.push(async () => {
    await inbound.close();
    await component.close();
  });
  return { url, component };
}

function client(url: string, options: { headers?: Record<string, string>; cert?: boolean } = {}) {
  const c = new ResourceLeaseClient({
    outbound: new HttpOutbound({
      url,
      ...(url.startsWith("https")
        ? { tls: { ca: pki.ca, ...(options.cert ? { cert: pki.client.cert, key: pki.client.key } : {}) } }
        : {}),
      ...(options.headers ? { headers: options.headers } : {}),
    }),
    caller: "spoofed-caller",
  });
  closers.push(() => c.close());
  return c;
}

const item = { resourceType: "t", resourceId: "1", partitionKey: "p", payloadEncoding: "json" };
const codeOf = (e: unknown) => (isOmniRelayError(e) ? `${e.status}:${e.code}` : String(e));

describe("principals over real HTTP", () => {
  it("a verified client certificate's subject is the principal recorded on the lease", async () => {
    const s = await start(true);
    await client(s.url, { cert: true }).enqueue(item);
    const [grant] = await client(s.url, { cert: true }).lease();
    expect(grant).toBeDefined();
    expect(s.component.queue.snapshot().active[0]?.principal).toBe("worker-1");
    expect(
      codeOf(
        await client(s.url)
          .lease()
          .catch((e) => e),
      ),
    ).toBe("unauthenticated:omnirelay.auth.required");
  });

  it("a verified JWT's subject is the principal; a forged or expired one is refused; a raw bearer is never a principal", async () => {
    const s = await start(false);
    const jwt = (sub: string, exp = "5m", key = secret) =>
      new SignJWT({})
        .setProtectedHeader({ alg: "HS256" })
        .setSubject(sub)
        .setIssuer("omnirelay-test")
        .setIssuedAt()
        .setExpirationTime(exp)
        .sign(key);
    const good = client(s.url, { headers: { authorization: `Bearer ${await jwt("svc-a")}` } });
    await good.enqueue(item);
    await good.lease();
    expect(s.component.queue.snapshot().active[0]?.principal).toBe("svc-a");
    const forged = client(s.url, {
      headers: {
        authorization: `Bearer ${await jwt("svc-a", "5m", new TextEncoder().encode("another-secret-another-secret-12"))}`,
      },
    });
    expect(codeOf(await forged.stats().catch((e) => e))).toBe("unauthenticated:omnirelay.auth.invalid_token");
    const raw = client(s.url, { headers: { authorization: "Bearer svc-a" } });
    expect(codeOf(await raw.stats().catch((e) => e))).toBe("unauthenticated:omnirelay.auth.invalid_token");
    const other = client(s.url, { headers: { authorization: `Bearer ${await jwt("intruder")}` } });
    await other.enqueue(item);
    expect(codeOf(await other.lease().catch((e) => e))).toBe("permission-denied:omnirelay.auth.forbidden");
  });

  it("a spoofed x-client-principal from an untrusted address does not become the principal", async () => {
    const s = await start(false);
    const spoof = client(s.url, { headers: { "x-client-principal": "worker-1" } });
    expect(codeOf(await spoof.lease().catch((e) => e))).toBe("unauthenticated:omnirelay.auth.required");
    const res = await fetch(s.url, {
      method: "POST",
      headers: { "rpc-procedure": "resourcelease::lease", "x-client-principal": "worker-1", "rpc-caller": "worker-1" },
      body: "{}",
    });
    expect(res.status).toBe(401);
  });
});
