import { createHmac, generateKeyPairSync, sign } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Dispatcher,
  isOmniRelayError,
  ResourceLeaseDispatcherComponent,
  type UnaryInboundMiddleware,
} from "@omnirelay/core";
import { PrincipalBindingMiddleware, type PrincipalBindingMiddlewareOptions } from "@omnirelay/core/middleware";
import { makeTestPki, type TestPki } from "@omnirelay/core/testing";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { GrpcInbound, GrpcOutbound } from "../src/index.js";
import { Cleanup, callJson } from "./harness.js";

// Issue #13, finding 5, over gRPC: the same principal binding runs in the gRPC inbound's middleware chain, so every
// combination of auth options must answer exactly as it does over HTTP (core/test/auth.test.ts).

const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
const rsaPem = rsa.publicKey.export({ type: "spki", format: "pem" }) as string;
const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);

/** A compact JWS: RS256 signs with the private key, HS256 with the given bytes. */
function jwt(alg: "RS256" | "HS256", claims: Record<string, unknown>, hmacKey?: string): string {
  const head = `${b64({ alg, typ: "JWT" })}.${b64(claims)}`;
  const signature =
    alg === "RS256"
      ? sign("sha256", Buffer.from(head), rsa.privateKey).toString("base64url")
      : createHmac("sha256", hmacKey as string)
          .update(head)
          .digest("base64url");
  return `${head}.${signature}`;
}

const tokens = {
  genuine: jwt("RS256", { sub: "svc-jwt", exp: now() + 300 }),
  // The attack: HS256 keyed with the public PEM, which anyone can read.
  confused: jwt("HS256", { sub: "attacker", exp: now() + 300 }, rsaPem),
  eternal: jwt("RS256", { sub: "svc-jwt" }),
  expired: jwt("RS256", { sub: "svc-jwt", exp: now() - 60 }),
};

type Caller = "anonymous" | keyof typeof tokens | "proxy header";

const required = "unauthenticated omnirelay.auth.required";
const invalid = "unauthenticated omnirelay.auth.invalid_token";
const jwtByPem = { jwt: { key: new TextEncoder().encode(rsaPem) } } satisfies PrincipalBindingMiddlewareOptions;

describe("every combination of auth options over real gRPC (issue #13 finding 5)", () => {
  const cleanup = new Cleanup();
  let dir: string;
  let pki: TestPki;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "omnirelay-grpc-auth-"));
    pki = await makeTestPki(dir, { clientCommonName: "worker-7" });
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });
  afterEach(() => cleanup.closeAll());

  /** A real queue behind the binding; a recorder after it notes the principal each call was bound to. */
  async function serve(binding: PrincipalBindingMiddlewareOptions | undefined, mtls = false) {
    const principals: string[] = [];
    const recorder: UnaryInboundMiddleware = {
      handle(request, next) {
        principals.push(request.meta.principal ?? "-");
        return next(request);
      },
    };
    const dispatcher = new Dispatcher({
      service: "grpc-auth",
      inboundMiddleware: [...(binding ? [new PrincipalBindingMiddleware(binding)] : []), recorder],
    });
    const component = cleanup.add(new ResourceLeaseDispatcherComponent(dispatcher));
    const inbound = cleanup.add(
      new GrpcInbound({
        dispatcher,
        ...(mtls
          ? { tls: { key: pki.server.key, cert: pki.server.cert, ca: pki.ca, requireClientCertificate: true } }
          : {}),
      }),
    );
    const { port } = await inbound.start();
    /** One call as `caller` (with the client certificate when the server requires one). */
    const call = async (caller: Caller, procedure = "resourcelease::stats"): Promise<string> => {
      const outbound = cleanup.add(
        new GrpcOutbound({
          address: `127.0.0.1:${port}`,
          defaultTimeoutMs: 5_000,
          // A proxy's header is static metadata of its connection (the outbound forwards only auth and trace headers).
          ...(caller === "proxy header" ? { metadata: { "x-client-principal": "via-proxy" } } : {}),
          ...(mtls ? { tls: { ca: pki.ca, cert: pki.client.cert, key: pki.client.key } } : {}),
        }),
      );
      const token = caller in tokens ? tokens[caller as keyof typeof tokens] : undefined;
      const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
      const before = principals.length;
      try {
        await callJson(outbound, procedure, { headers });
        return `ok ${principals[before]}`;
      } catch (error) {
        if (!isOmniRelayError(error)) throw error;
        return `${error.status} ${error.code}`;
      }
    };
    return { call, component };
  }

  it("the reproduction: HS256 signed with the public PEM is refused, the genuine RS256 token accepted", async () => {
    const s = await serve(jwtByPem);
    expect(await s.call("confused")).toBe(invalid);
    expect(await s.call("genuine")).toBe("ok svc-jwt");
  });

  const rows: Array<{
    name: string;
    binding: PrincipalBindingMiddlewareOptions | undefined;
    mtls?: boolean;
    expect: Partial<Record<Caller, string>>;
  }> = [
    {
      name: "no authentication configured",
      binding: undefined,
      expect: { anonymous: "ok -", genuine: "ok -", confused: "ok -", "proxy header": "ok -" },
    },
    {
      name: "JWT only (RSA public key as PEM bytes)",
      binding: jwtByPem,
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
      name: "mTLS configured, caller without a certificate (plaintext port)",
      binding: {},
      expect: { anonymous: required, genuine: required, "proxy header": required },
    },
    {
      // Every caller of an mTLS port presents the client certificate; its subject wins over a token.
      name: "mTLS only",
      binding: {},
      mtls: true,
      expect: { anonymous: "ok worker-7", genuine: "ok worker-7" },
    },
    {
      name: "mTLS and JWT",
      binding: jwtByPem,
      mtls: true,
      expect: { anonymous: "ok worker-7", confused: "ok worker-7" },
    },
    {
      name: "trusted proxy only",
      binding: { trustedProxies: ["127.0.0.1"], acceptClientCertificates: false },
      expect: { anonymous: required, "proxy header": "ok via-proxy", genuine: required },
    },
    {
      name: "JWT with requireAuthentication: true said explicitly",
      binding: { ...jwtByPem, requireAuthentication: true },
      expect: { anonymous: required, genuine: "ok svc-jwt" },
    },
    {
      name: "JWT with requireAuthentication: false (binding only)",
      binding: { ...jwtByPem, requireAuthentication: false },
      expect: { anonymous: "ok -", genuine: "ok svc-jwt", confused: invalid, eternal: invalid },
    },
    {
      name: "JWT with resourcelease::stats allow-listed for anonymous callers",
      binding: { ...jwtByPem, allowAnonymous: ["resourcelease::stats"] },
      expect: { anonymous: "ok -", genuine: "ok svc-jwt", confused: invalid },
    },
  ];

  for (const row of rows) {
    it(row.name, async () => {
      const s = await serve(row.binding, row.mtls);
      const seen: Partial<Record<Caller, string>> = {};
      for (const caller of Object.keys(row.expect) as Caller[]) seen[caller] = await s.call(caller);
      expect(seen).toEqual(row.expect);
    });
  }

  it("with JWT configured an anonymous caller cannot drain, and allowAnonymous opens only what it names", async () => {
    const s = await serve({ ...jwtByPem, allowAnonymous: ["resourcelease::stats"] });
    await s.component.queue.enqueue({ resourceType: "t", resourceId: "1", partitionKey: "p", payloadEncoding: "json" });
    expect(await s.call("anonymous", "resourcelease::drain")).toBe(required);
    expect(await s.call("anonymous", "resourcelease::stats")).toBe("ok -");
    expect(s.component.queue.stats()).toMatchObject({ state: "running", pendingCount: 1 });
    expect(await s.call("genuine", "resourcelease::drain")).toBe("ok svc-jwt");
    expect(s.component.queue.stats().state).toBe("draining");
  });
});
