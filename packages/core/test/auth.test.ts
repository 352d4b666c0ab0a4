import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import {
  Dispatcher,
  HttpInbound,
  HttpOutbound,
  isOmniRelayError,
  ResourceLeaseClient,
  ResourceLeaseDispatcherComponent,
} from "../src/index.js";
import {
  AuthorizationMiddleware,
  PrincipalBindingMiddleware,
  type PrincipalBindingMiddlewareOptions,
} from "../src/middleware/index.js";
import { makeTestPki } from "../src/testing/index.js";

const pkiDir = mkdtempSync(join(tmpdir(), "omnirelay-pki-"));
const pki = await makeTestPki(pkiDir, { clientCommonName: "worker-1" });
afterAll(() => rmSync(pkiDir, { recursive: true, force: true }));
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

// ---------------------------------------------------------------------------------------------------------------
// Issue #13, finding 5: algorithm confusion, unpinned algorithms, tokens without exp, anonymous calls let through.

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const rsaPemBytes = new TextEncoder().encode(rsa.publicKey.export({ type: "spki", format: "pem" }) as string);
const now = () => Math.floor(Date.now() / 1000);

/** The tokens a caller may present. */
const tokens = {
  /** A genuine RS256 token from the key's owner. */
  genuine: await new SignJWT({ sub: "svc-jwt" })
    .setProtectedHeader({ alg: "RS256" })
    .setExpirationTime("5m")
    .sign(rsa.privateKey),
  /** HS256 signed with the *public* PEM: what an attacker can make. */
  confused: await new SignJWT({ sub: "attacker" })
    .setProtectedHeader({ alg: "HS256" })
    .setExpirationTime("5m")
    .sign(rsaPemBytes),
  /** Genuine, but never expires. */
  eternal: await new SignJWT({ sub: "svc-jwt" }).setProtectedHeader({ alg: "RS256" }).sign(rsa.privateKey),
  /** Genuine, but expired a minute ago. */
  expired: await new SignJWT({ sub: "svc-jwt", exp: now() - 60 })
    .setProtectedHeader({ alg: "RS256" })
    .sign(rsa.privateKey),
};

type Caller = "anonymous" | "genuine" | "confused" | "eternal" | "expired" | "certificate" | "proxy header";

/** A node whose `whoami::get` answers the bound principal, over HTTP or HTTPS with optional client certificates. */
async function whoamiNode(binding: PrincipalBindingMiddlewareOptions | undefined, tls: boolean) {
  const dispatcher = new Dispatcher({
    service: "auth-matrix",
    inboundMiddleware: binding === undefined ? [] : [new PrincipalBindingMiddleware(binding)],
  });
  const component = new ResourceLeaseDispatcherComponent(dispatcher);
  dispatcher.registerJson("whoami::get", async (_body, meta) => ({ principal: meta.principal ?? "-" }));
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

/** One raw call as `caller`; `ok <principal>` or `<http status> <code>`. */
function call(url: string, caller: Caller, procedure = "whoami::get"): Promise<string> {
  const token = caller in tokens ? tokens[caller as keyof typeof tokens] : undefined;
  const headers: Record<string, string> = {
    "content-type": "application/json",
    "rpc-procedure": procedure,
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    ...(caller === "proxy header" ? { "x-client-principal": "via-proxy" } : {}),
  };
  const secure = url.startsWith("https:");
  const tls = secure
    ? { ca: pki.ca, ...(caller === "certificate" ? { cert: pki.client.cert, key: pki.client.key } : {}) }
    : {};
  return new Promise((resolve, reject) => {
    const send = secure ? httpsRequest : httpRequest;
    const req = send(url, { method: "POST", headers, ...tls, agent: false }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        text += chunk;
      });
      res.on("end", () => {
        const body = JSON.parse(text) as { principal?: string; code?: string };
        resolve(res.statusCode === 200 ? `ok ${body.principal}` : `${res.statusCode} ${body.code}`);
      });
    });
    req.on("error", reject);
    req.end("{}");
  });
}

const required = "401 omnirelay.auth.required";
const invalid = "401 omnirelay.auth.invalid_token";
const jwtByPem = { jwt: { key: rsaPemBytes } } satisfies PrincipalBindingMiddlewareOptions;

describe("every combination of auth options over real HTTP (issue #13 finding 5)", () => {
  it("the reproduction: HS256 signed with the public PEM is refused, the genuine RS256 token accepted", async () => {
    const s = await whoamiNode(jwtByPem, false);
    expect(await call(s.url, "confused")).toBe(invalid);
    expect(await call(s.url, "genuine")).toBe("ok svc-jwt");
  });

  const rows: Array<{
    name: string;
    binding: PrincipalBindingMiddlewareOptions | undefined;
    tls: boolean;
    expect: Partial<Record<Caller, string>>;
  }> = [
    {
      name: "no authentication configured",
      binding: undefined,
      tls: false,
      expect: { anonymous: "ok -", genuine: "ok -", confused: "ok -", "proxy header": "ok -" },
    },
    {
      name: "JWT only (RSA public key as PEM bytes)",
      binding: jwtByPem,
      tls: false,
      expect: {
        anonymous: required,
        genuine: "ok svc-jwt",
        confused: invalid,
        eternal: invalid,
        expired: invalid,
        "proxy header": required,
      },
    },
    {
      name: "mTLS only",
      binding: {},
      tls: true,
      expect: { anonymous: required, certificate: "ok worker-1", genuine: required, "proxy header": required },
    },
    {
      name: "mTLS and JWT",
      binding: jwtByPem,
      tls: true,
      expect: { anonymous: required, certificate: "ok worker-1", genuine: "ok svc-jwt", confused: invalid },
    },
    {
      name: "trusted proxy only",
      binding: { trustedProxies: ["127.0.0.1"], acceptClientCertificates: false },
      tls: false,
      expect: { anonymous: required, "proxy header": "ok via-proxy", genuine: required },
    },
    {
      name: "JWT with requireAuthentication: true said explicitly",
      binding: { ...jwtByPem, requireAuthentication: true },
      tls: false,
      expect: { anonymous: required, genuine: "ok svc-jwt" },
    },
    {
      name: "JWT with requireAuthentication: false (binding only)",
      binding: { ...jwtByPem, requireAuthentication: false },
      tls: false,
      expect: { anonymous: "ok -", genuine: "ok svc-jwt", confused: invalid, eternal: invalid },
    },
    {
      name: "JWT with whoami::* allow-listed for anonymous callers",
      binding: { ...jwtByPem, allowAnonymous: ["whoami::*"] },
      tls: false,
      expect: { anonymous: "ok -", genuine: "ok svc-jwt", confused: invalid },
    },
  ];

  for (const row of rows) {
    it(row.name, async () => {
      const s = await whoamiNode(row.binding, row.tls);
      const seen: Partial<Record<Caller, string>> = {};
      for (const caller of Object.keys(row.expect) as Caller[]) seen[caller] = await call(s.url, caller);
      expect(seen).toEqual(row.expect);
    });
  }

  it("with JWT configured an anonymous caller cannot drain, and allowAnonymous opens only what it names", async () => {
    const s = await whoamiNode({ ...jwtByPem, allowAnonymous: ["resourcelease::stats"] }, false);
    await s.component.queue.enqueue({ resourceType: "t", resourceId: "1", partitionKey: "p", payloadEncoding: "json" });
    expect(await call(s.url, "anonymous", "resourcelease::drain")).toBe(required);
    expect(await call(s.url, "anonymous", "whoami::get")).toBe(required);
    expect(await call(s.url, "anonymous", "resourcelease::stats")).toMatch(/^ok /);
    expect(s.component.queue.stats()).toMatchObject({ state: "running", pendingCount: 1 });
    expect(await call(s.url, "genuine", "resourcelease::drain")).toMatch(/^ok /);
    expect(s.component.queue.stats().state).toBe("draining");
  });
});
