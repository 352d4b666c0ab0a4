import { generateKeyPairSync } from "node:crypto";
import { base64url, createLocalJWKSet, exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { PrincipalBindingMiddleware } from "./principal-binding.js";
import {
  audience,
  bearer,
  hsOptions,
  hsToken,
  optionError,
  principalSeen,
  rejection,
  secret,
  signed,
  verdict,
} from "./principal-binding-test-helpers.js";

describe("PrincipalBindingMiddleware: JWT", () => {
  it("binds the sub claim of a valid HS256 token", async () => {
    const token = await hsToken({ sub: "worker-1" });
    const meta = await principalSeen(hsOptions, { headers: bearer(token) });
    expect(meta?.principal).toBe("worker-1");
  });

  it("says when the token stops being valid (exp plus the clock tolerance), and drops one a caller sent", async () => {
    const exp = Math.floor(Date.now() / 1000) + 120;
    const token = await hsToken({ sub: "worker-1" }, { expiresIn: exp });
    const meta = await principalSeen(hsOptions, { headers: bearer(token), credentialExpiresAt: 8.64e15 });
    expect(meta?.credentialExpiresAt).toBe(exp * 1000 + 5_000); // the default tolerance: 5 s
    const tight = { jwt: { ...hsOptions.jwt!, clockToleranceMs: 0 } };
    expect((await principalSeen(tight, { headers: bearer(token) }))?.credentialExpiresAt).toBe(exp * 1000);
    // Without a token there is no expiry to tell, and nothing a caller claims stands in for one.
    const proxied = await principalSeen(
      { trustedProxies: ["10.0.0.1"] },
      {
        headers: { "x-client-principal": "p" },
        security: { remoteAddress: "10.0.0.1", clientCertificateVerified: false },
        credentialExpiresAt: 8.64e15,
      },
    );
    expect(proxied?.principal).toBe("p");
    expect(proxied?.credentialExpiresAt).toBeUndefined();
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

  it("rejects a verified token that has no principal claim", async () => {
    const token = await hsToken({ scope: "x" });
    expect(await rejection(hsOptions, { headers: bearer(token) })).toMatchObject({
      code: "omnirelay.auth.invalid_token",
      metadata: { reason: "principal_claim_missing" },
    });
  });

  it("rejects a principal claim that is not well-formed Unicode (a lone surrogate no log would keep)", async () => {
    const token = await hsToken({ sub: "worker\ud800" });
    expect(await rejection(hsOptions, { headers: bearer(token) })).toMatchObject({
      code: "omnirelay.auth.invalid_token",
      metadata: { reason: "principal_claim_invalid" },
    });
  });

  it("never turns a bearer string into a principal when no JWT verification is configured", async () => {
    const token = await hsToken({ sub: "worker-1" });
    const meta = await principalSeen({ requireAuthentication: false }, { headers: bearer(token) });
    expect(meta?.principal).toBeUndefined();
    expect(await rejection({}, { headers: bearer("alice") })).toMatchObject({
      status: "unauthenticated",
      code: "omnirelay.auth.required",
      metadata: { procedure: "resourcelease::stats" },
    });
  });

  it("reports an unreachable key set as unavailable, not as a bad token", async () => {
    const { privateKey } = await generateKeyPair("ES256");
    const token = await signed("ES256", privateKey);
    const jwks = async () => {
      throw new TypeError("fetch failed");
    };
    expect(await rejection({ jwt: { jwks } }, { headers: bearer(token) })).toMatchObject({
      status: "unavailable",
      code: "omnirelay.auth.keys_unavailable",
    });
  });
});

describe("PrincipalBindingMiddleware: hostile bearer tokens", () => {
  it("answers every malformed or hostile token with unauthenticated invalid_token, never anything else", async () => {
    const part = (value: unknown) => base64url.encode(typeof value === "string" ? value : JSON.stringify(value));
    const exp = Math.floor(Date.now() / 1000) + 60;
    const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const hostile = [
      "",
      "a.b.c",
      "....",
      `${part({ alg: "RS256" })}.${part("{not json")}.sig`,
      `${part("[1,2]")}.${part({ sub: "x", exp })}.sig`,
      `${part({ alg: "RS256", crit: ["b64"], b64: false })}.${part({ sub: "x", exp })}.sig`,
      `${part({ alg: "HS256", jwk: await exportJWK(rsa.publicKey) })}.${part({ sub: "x", exp })}.sig`,
      `${part({ alg: "RS256", kid: "../../../etc/passwd" })}.${part({ sub: "x", exp })}.${"A".repeat(342)}`,
      `${part({ alg: "ES256K" })}.${part({ sub: "x", exp })}.sig`,
      `${part({ alg: "RS256" })}.${part({ sub: "x", exp: "tomorrow" })}.sig`,
      `${part({ alg: "RS256" })}.${part({ sub: "x", exp: 1e308 })}.sig`,
      "x".repeat(1 << 20),
      "é.ü.ß",
    ];
    for (const options of [{ jwt: { key: rsa.publicKey } }, { jwt: { key: secret } }]) {
      for (const token of hostile) {
        const error = await rejection(options, { headers: { authorization: `Bearer ${token}` } });
        expect(
          { token: token.slice(0, 60), status: (error as { status?: string }).status },
          JSON.stringify((error as { metadata?: unknown }).metadata),
        ).toEqual({ token: token.slice(0, 60), status: "unauthenticated" });
        expect((error as { code?: string }).code).toBe("omnirelay.auth.invalid_token");
      }
    }
  });
});

describe("PrincipalBindingMiddleware: exp and the clock", () => {
  const now = () => Math.floor(Date.now() / 1000);

  it("refuses a token without exp", async () => {
    const token = await new SignJWT({ sub: "caller" }).setProtectedHeader({ alg: "HS256" }).sign(secret);
    expect(await rejection({ jwt: { key: secret } }, { headers: bearer(token) })).toMatchObject({
      status: "unauthenticated",
      code: "omnirelay.auth.invalid_token",
      metadata: { reason: "claim_missing", claim: "exp" },
    });
  });

  it("allows 5 s of clock skew by default, and exactly clockToleranceMs when set", async () => {
    const justExpired = await signed("HS256", secret, { sub: "caller", exp: now() - 2 });
    const longExpired = await signed("HS256", secret, { sub: "caller", exp: now() - 30 });
    expect(await verdict({ jwt: { key: secret } }, justExpired)).toBe("ok");
    expect(await verdict({ jwt: { key: secret } }, longExpired)).toBe("omnirelay.auth.invalid_token/expired");
    expect(await verdict({ jwt: { key: secret, clockToleranceMs: 0 } }, justExpired)).toBe(
      "omnirelay.auth.invalid_token/expired",
    );
    expect(await verdict({ jwt: { key: secret, clockToleranceMs: 60_000 } }, longExpired)).toBe("ok");
    const early = await signed("HS256", secret, { sub: "caller", exp: now() + 600, nbf: now() + 60 });
    expect(await verdict({ jwt: { key: secret } }, early)).toBe("omnirelay.auth.invalid_token/claim_invalid");
  });

  it("validates the clock tolerance", () => {
    for (const clockToleranceMs of [-1, Number.NaN, Number.POSITIVE_INFINITY, 300_001]) {
      expect(() => new PrincipalBindingMiddleware({ jwt: { key: secret, clockToleranceMs } })).toThrow(
        optionError("jwt.clockToleranceMs"),
      );
    }
  });
});
