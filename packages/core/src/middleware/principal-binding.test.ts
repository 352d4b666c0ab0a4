import { createLocalJWKSet, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import type { RequestMeta, TransportSecurity } from "../dispatcher/types.js";
import { PrincipalBindingMiddleware, type PrincipalBindingMiddlewareOptions } from "./principal-binding.js";
import { makeRequest, recordingDispatcher } from "./test-helpers.js";

const secret = new TextEncoder().encode("a-test-secret-that-is-at-least-32-bytes-long!");
const issuer = "https://issuer.test";
const audience = "omnirelay";

async function hsToken(claims: JWTPayload, options: { key?: Uint8Array; expiresIn?: string | number } = {}) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "5m")
    .sign(options.key ?? secret);
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

async function principalSeen(options: PrincipalBindingMiddlewareOptions, meta: Partial<RequestMeta>) {
  const { dispatcher, seen } = recordingDispatcher([new PrincipalBindingMiddleware(options)]);
  await dispatcher.dispatch(makeRequest(meta));
  expect(seen).toHaveLength(1);
  return seen[0];
}

async function rejection(options: PrincipalBindingMiddlewareOptions, meta: Partial<RequestMeta>) {
  const { dispatcher, seen } = recordingDispatcher([new PrincipalBindingMiddleware(options)]);
  const error = await dispatcher.dispatch(makeRequest(meta)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(seen).toHaveLength(0);
  return error;
}

const hsOptions: PrincipalBindingMiddlewareOptions = { jwt: { key: secret, issuer, audience, algorithms: ["HS256"] } };

describe("PrincipalBindingMiddleware: JWT", () => {
  it("binds the sub claim of a valid HS256 token", async () => {
    const token = await hsToken({ sub: "worker-1" });
    const meta = await principalSeen(hsOptions, { headers: bearer(token) });
    expect(meta?.principal).toBe("worker-1");
  });

  it("verifies RS256 and ES256 tokens against a public key", async () => {
    for (const alg of ["RS256", "ES256"] as const) {
      const { publicKey, privateKey } = await generateKeyPair(alg);
      const token = await new SignJWT({ sub: `svc-${alg}` })
        .setProtectedHeader({ alg })
        .setExpirationTime("1m")
        .sign(privateKey);
      const meta = await principalSeen({ jwt: { key: publicKey, algorithms: [alg] } }, { headers: bearer(token) });
      expect(meta?.principal).toBe(`svc-${alg}`);
    }
  });

  it("verifies against a local JWKS and reads a configured principal claim", async () => {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const jwk = { ...(await exportJWK(publicKey)), kid: "k1", alg: "ES256" };
    const jwks = createLocalJWKSet({ keys: [jwk] });
    const token = await new SignJWT({ sub: "ignored", email: "ops@example.test" })
      .setProtectedHeader({ alg: "ES256", kid: "k1" })
      .setExpirationTime("1m")
      .sign(privateKey);
    const meta = await principalSeen({ jwt: { jwks, principalClaim: "email" } }, { headers: bearer(token) });
    expect(meta?.principal).toBe("ops@example.test");

    const other = await generateKeyPair("ES256");
    const foreign = await new SignJWT({ sub: "x" })
      .setProtectedHeader({ alg: "ES256", kid: "k2" })
      .setExpirationTime("1m")
      .sign(other.privateKey);
    expect(await rejection({ jwt: { jwks } }, { headers: bearer(foreign) })).toMatchObject({
      status: "unauthenticated",
      code: "omnirelay.auth.invalid_token",
      metadata: { reason: "no_matching_key" },
    });
  });

  it("rejects expired, wrong-issuer and wrongly signed tokens without echoing them", async () => {
    const expired = await hsToken({ sub: "a" }, { expiresIn: Math.floor(Date.now() / 1000) - 60 });
    const wrongIssuer = await new SignJWT({ sub: "a" })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer("https://evil.test")
      .setAudience(audience)
      .setExpirationTime("1m")
      .sign(secret);
    const forged = await hsToken(
      { sub: "admin" },
      { key: new TextEncoder().encode("another-secret-of-32-bytes-or-more!!") },
    );
    const cases: Array<[string, Record<string, string>]> = [
      [expired, { reason: "expired" }],
      [wrongIssuer, { reason: "claim_invalid", claim: "iss" }],
      [forged, { reason: "signature_invalid" }],
      ["not-a-jwt", { reason: "malformed" }],
    ];
    for (const [token, metadata] of cases) {
      const error = await rejection(hsOptions, { headers: bearer(token) });
      expect(error).toMatchObject({ status: "unauthenticated", code: "omnirelay.auth.invalid_token", metadata });
      expect(JSON.stringify(error)).not.toContain(token);
      expect((error as Error).message).not.toContain(token);
      expect((error as Error).cause).toBeUndefined();
    }
  });

  it("honours the configured clock tolerance", async () => {
    const justExpired = await hsToken({ sub: "late" }, { expiresIn: Math.floor(Date.now() / 1000) - 2 });
    const tolerant = { jwt: { key: secret, clockToleranceMs: 10_000 } };
    expect((await principalSeen(tolerant, { headers: bearer(justExpired) }))?.principal).toBe("late");
    expect(await rejection({ jwt: { key: secret } }, { headers: bearer(justExpired) })).toMatchObject({
      metadata: { reason: "expired" },
    });
  });

  it("rejects a verified token that has no principal claim", async () => {
    const token = await hsToken({ scope: "x" });
    expect(await rejection(hsOptions, { headers: bearer(token) })).toMatchObject({
      code: "omnirelay.auth.invalid_token",
      metadata: { reason: "principal_claim_missing" },
    });
  });

  it("never turns a bearer string into a principal when no JWT verification is configured", async () => {
    const token = await hsToken({ sub: "worker-1" });
    const meta = await principalSeen({}, { headers: bearer(token) });
    expect(meta?.principal).toBeUndefined();
    expect(await rejection({ requireAuthentication: true }, { headers: bearer("alice") })).toMatchObject({
      status: "unauthenticated",
      code: "omnirelay.auth.required",
      metadata: { procedure: "resourcelease::stats" },
    });
  });

  it("reports an unreachable key set as unavailable, not as a bad token", async () => {
    const token = await hsToken({ sub: "a" });
    const jwks = async () => {
      throw new TypeError("fetch failed");
    };
    expect(await rejection({ jwt: { jwks } }, { headers: bearer(token) })).toMatchObject({
      status: "unavailable",
      code: "omnirelay.auth.keys_unavailable",
    });
  });
});

describe("PrincipalBindingMiddleware: certificates and proxies", () => {
  const verified = (subject: string, remoteAddress = "10.0.0.9"): TransportSecurity => ({
    clientCertificateVerified: true,
    clientCertificateSubject: subject,
    remoteAddress,
  });

  it("prefers the verified certificate subject over a JWT and a proxy header", async () => {
    const token = await hsToken({ sub: "jwt-user" });
    const meta = await principalSeen(
      { ...hsOptions, trustedProxies: ["10.0.0.9"] },
      {
        headers: { ...bearer(token), "x-client-principal": "header-user" },
        security: verified("cert-user"),
      },
    );
    expect(meta?.principal).toBe("cert-user");
  });

  it("ignores unverified certificates and certificates when disabled", async () => {
    const token = await hsToken({ sub: "jwt-user" });
    const unverified = { clientCertificateVerified: false, clientCertificateSubject: "cert-user" };
    expect((await principalSeen(hsOptions, { headers: bearer(token), security: unverified }))?.principal).toBe(
      "jwt-user",
    );
    const disabled = { ...hsOptions, acceptClientCertificates: false };
    expect(
      (await principalSeen(disabled, { headers: bearer(token), security: verified("cert-user") }))?.principal,
    ).toBe("jwt-user");
  });

  it("ignores and strips a spoofed principal header from an untrusted address", async () => {
    const meta = await principalSeen(
      { trustedProxies: ["127.0.0.1"] },
      {
        headers: { "x-client-principal": "admin", "rpc-principal": "admin", other: "kept" },
        security: { clientCertificateVerified: false, remoteAddress: "203.0.113.7" },
      },
    );
    expect(meta?.principal).toBeUndefined();
    expect(meta?.headers).toEqual({ other: "kept" });
  });

  it("honours a principal header from a trusted proxy, including its IPv4-mapped IPv6 form", async () => {
    for (const remoteAddress of ["127.0.0.1", "::ffff:127.0.0.1", "::FFFF:7f00:1"]) {
      const meta = await principalSeen(
        { trustedProxies: ["127.0.0.1", "2001:db8::1"] },
        {
          headers: { "x-client-principal": "  ", "x-mtls-subject": "CN=mesh-node" },
          security: { clientCertificateVerified: false, remoteAddress },
        },
      );
      expect(meta?.principal).toBe("CN=mesh-node");
    }
    const v6 = await principalSeen(
      { trustedProxies: ["2001:0db8:0:0::1"] },
      {
        headers: { "rpc-principal": "p" },
        security: { clientCertificateVerified: false, remoteAddress: "2001:db8::1" },
      },
    );
    expect(v6?.principal).toBe("p");
  });

  it("replaces a principal that something upstream put on the meta", async () => {
    const meta = await principalSeen({}, { principal: "smuggled" });
    expect(meta?.principal).toBeUndefined();
  });

  it("validates its options", () => {
    expect(() => new PrincipalBindingMiddleware({ trustedProxies: ["10.0.0.0/8"] })).toThrow(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "trustedProxies" } }),
    );
    expect(() => new PrincipalBindingMiddleware({ jwt: {} })).toThrow(
      expect.objectContaining({ metadata: { option: "jwt" } }),
    );
    expect(() => new PrincipalBindingMiddleware({ jwt: { key: secret, clockToleranceMs: -1 } })).toThrow(
      expect.objectContaining({ metadata: { option: "jwt.clockToleranceMs" } }),
    );
    expect(() => new PrincipalBindingMiddleware({ principalHeaders: [" "] })).toThrow(
      expect.objectContaining({ metadata: { option: "principalHeaders" } }),
    );
  });
});
