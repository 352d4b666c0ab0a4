import { createPrivateKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  base64url,
  createLocalJWKSet,
  exportJWK,
  generateKeyPair,
  type JWK,
  type JWTPayload,
  type KeyInput,
  SignJWT,
} from "jose";
import { describe, expect, it } from "vitest";
import type { RequestMeta, TransportSecurity } from "../dispatcher/types.js";
import { makeTestPki } from "../testing/pki.js";
import { PrincipalBindingMiddleware, type PrincipalBindingMiddlewareOptions } from "./principal-binding.js";
import { makeRequest, recordingDispatcher } from "./test-helpers.js";

const secret = new TextEncoder().encode("a-test-secret-that-is-at-least-32-bytes-long!");
const issuer = "https://issuer.test";
const audience = "omnirelay";
const encoder = new TextEncoder();

async function hsToken(claims: JWTPayload, options: { key?: Uint8Array; expiresIn?: string | number } = {}) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "5m")
    .sign(options.key ?? secret);
}

/** A token with `alg` signed by `key`, expiring in a minute (unless `claims.exp` says otherwise). */
async function signed(alg: string, key: KeyInput, claims: JWTPayload = { sub: "caller" }) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg });
  if (!("exp" in claims)) jwt.setExpirationTime("1m");
  return jwt.sign(key);
}

/** An unsigned `alg: none` token (jose will not make one). */
function unsecured(claims: JWTPayload): string {
  const part = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${part({ alg: "none", typ: "JWT" })}.${part({ exp: Math.floor(Date.now() / 1000) + 60, ...claims })}.`;
}

function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

const procedures = ["resourcelease::stats", "resourcelease::lease", "resourcelease::drain"];

async function principalSeen(options: PrincipalBindingMiddlewareOptions, meta: Partial<RequestMeta>) {
  const { dispatcher, seen } = recordingDispatcher([new PrincipalBindingMiddleware(options)], procedures);
  await dispatcher.dispatch(makeRequest(meta));
  expect(seen).toHaveLength(1);
  return seen[0];
}

async function rejection(options: PrincipalBindingMiddlewareOptions, meta: Partial<RequestMeta>) {
  const { dispatcher, seen } = recordingDispatcher([new PrincipalBindingMiddleware(options)], procedures);
  const error = await dispatcher.dispatch(makeRequest(meta)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(seen).toHaveLength(0);
  return error;
}

/** `ok` when the token binds `caller`, else the rejection's `code/reason`. */
async function verdict(options: PrincipalBindingMiddlewareOptions, token: string): Promise<string> {
  const { dispatcher, seen } = recordingDispatcher([new PrincipalBindingMiddleware(options)], procedures);
  try {
    await dispatcher.dispatch(makeRequest({ headers: bearer(token) }));
    return seen[0]?.principal === "caller" ? "ok" : `bound ${seen[0]?.principal}`;
  } catch (error) {
    const e = error as { code?: string; metadata?: Record<string, string> };
    return `${e.code}/${e.metadata?.reason}`;
  }
}

const optionError = (option: string) =>
  expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option } });

const hsOptions: PrincipalBindingMiddlewareOptions = { jwt: { key: secret, issuer, audience, algorithms: ["HS256"] } };
const notAllowed = "omnirelay.auth.invalid_token/algorithm_not_allowed";

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

  it("rejects a verified token that has no principal claim", async () => {
    const token = await hsToken({ scope: "x" });
    expect(await rejection(hsOptions, { headers: bearer(token) })).toMatchObject({
      code: "omnirelay.auth.invalid_token",
      metadata: { reason: "principal_claim_missing" },
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

describe("PrincipalBindingMiddleware: algorithms are pinned to the key's type (finding 5)", () => {
  const rsa = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const rsaPem = rsa.publicKey.export({ type: "spki", format: "pem" }) as string;

  it("an RSA public key given as PEM bytes verifies RS256 and refuses HS256 tokens signed with those bytes", async () => {
    const options = { jwt: { key: encoder.encode(rsaPem) } };
    expect(await verdict(options, await signed("RS256", rsa.privateKey))).toBe("ok");
    // The confusion: the public PEM (which anyone may read) used as an HMAC secret.
    expect(await verdict(options, await signed("HS256", encoder.encode(rsaPem)))).toBe(notAllowed);
    expect(await verdict(options, await signed("HS512", encoder.encode(rsaPem)))).toBe(notAllowed);
  });

  it("treats every encoding of a public key as that public key, never as a secret", async () => {
    const pki = await makeTestPki(mkdtempSync(join(tmpdir(), "omnirelay-jwt-pki-")));
    const der = rsa.publicKey.export({ type: "spki", format: "der" });
    const pkcs1 = rsa.publicKey.export({ type: "pkcs1", format: "pem" }) as string;
    const jwk = rsa.publicKey.export({ format: "jwk" }) as JWK;
    const certKey = createPrivateKey(pki.server.key);
    const forms: Array<[string, KeyInput | string, KeyObject, Uint8Array]> = [
      ["PEM text", rsaPem, rsa.privateKey, encoder.encode(rsaPem)],
      ["PKCS#1 PEM", encoder.encode(pkcs1), rsa.privateKey, encoder.encode(pkcs1)],
      ["DER bytes", new Uint8Array(der), rsa.privateKey, new Uint8Array(der)],
      [
        "private key PEM",
        encoder.encode(rsa.privateKey.export({ type: "pkcs8", format: "pem" }) as string),
        rsa.privateKey,
        encoder.encode(rsaPem),
      ],
      ["JWK", jwk, rsa.privateKey, encoder.encode(JSON.stringify(jwk))],
      ["X.509 certificate (EC P-256)", encoder.encode(pki.server.cert), certKey, encoder.encode(pki.server.cert)],
    ];
    for (const [name, key, signer, confusion] of forms) {
      const options = { jwt: { key: key as KeyInput } };
      const alg = name.startsWith("X.509") ? "ES256" : "RS256";
      expect(await verdict(options, await signed(alg, signer)), name).toBe("ok");
      expect(await verdict(options, await signed("HS256", confusion)), name).toBe(notAllowed);
    }
  });

  it("accepts exactly the algorithms of each key type", async () => {
    const ec256 = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const ec384 = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const ec521 = generateKeyPairSync("ec", { namedCurve: "P-521" });
    const ed = generateKeyPairSync("ed25519");
    // Every token any of these signers can make; each key must accept its own family and nothing else.
    const tokens: Record<string, string> = {
      RS256: await signed("RS256", rsa.privateKey),
      RS384: await signed("RS384", rsa.privateKey),
      RS512: await signed("RS512", rsa.privateKey),
      PS256: await signed("PS256", rsa.privateKey),
      PS512: await signed("PS512", rsa.privateKey),
      ES256: await signed("ES256", ec256.privateKey),
      ES384: await signed("ES384", ec384.privateKey),
      ES512: await signed("ES512", ec521.privateKey),
      EdDSA: await signed("EdDSA", ed.privateKey),
      HS256: await signed("HS256", secret),
      HS384: await signed("HS384", secret),
      HS512: await signed("HS512", secret),
      none: unsecured({ sub: "caller" }),
    };
    const keys: Array<[string, KeyInput, string[]]> = [
      ["rsa", rsa.publicKey, ["RS256", "RS384", "RS512", "PS256", "PS512"]],
      ["ec P-256", ec256.publicKey, ["ES256"]],
      ["ec P-384", ec384.publicKey, ["ES384"]],
      ["ec P-521", ec521.publicKey, ["ES512"]],
      ["ed25519", ed.publicKey, ["EdDSA"]],
      ["secret", secret, ["HS256", "HS384", "HS512"]],
    ];
    for (const [name, key, accepted] of keys) {
      const outcome: Record<string, boolean> = {};
      for (const [alg, token] of Object.entries(tokens))
        outcome[alg] = (await verdict({ jwt: { key } }, token)) === "ok";
      const expected = Object.fromEntries(Object.keys(tokens).map((alg) => [alg, accepted.includes(alg)]));
      expect(outcome, name).toEqual(expected);
    }
    // Another curve's algorithm is refused before any signature check.
    expect(await verdict({ jwt: { key: ec384.publicKey } }, tokens.ES256 as string)).toBe(notAllowed);
  });

  it("narrows to the configured algorithms and refuses algorithms the key cannot verify", async () => {
    expect(await verdict({ jwt: { key: secret, algorithms: ["HS256"] } }, await signed("HS512", secret))).toBe(
      notAllowed,
    );
    expect(await verdict({ jwt: { key: secret, algorithms: ["HS512"] } }, await signed("HS512", secret))).toBe("ok");
    expect(() => new PrincipalBindingMiddleware({ jwt: { key: rsa.publicKey, algorithms: ["HS256"] } })).toThrow(
      optionError("jwt.algorithms"),
    );
    expect(() => new PrincipalBindingMiddleware({ jwt: { key: secret, algorithms: ["RS256"] } })).toThrow(
      optionError("jwt.algorithms"),
    );
    expect(() => new PrincipalBindingMiddleware({ jwt: { key: secret, algorithms: ["none"] } })).toThrow(
      optionError("jwt.algorithms"),
    );
    expect(() => new PrincipalBindingMiddleware({ jwt: { key: secret, algorithms: [] } })).toThrow(
      optionError("jwt.algorithms"),
    );
    const jwks = createLocalJWKSet({ keys: [] });
    expect(() => new PrincipalBindingMiddleware({ jwt: { jwks, algorithms: ["HS256"] } })).toThrow(
      optionError("jwt.algorithms"),
    );
  });

  it("never lets a key set verify an HS* token, even with an 'oct' key in it", async () => {
    const jwks = createLocalJWKSet({
      keys: [
        { kty: "oct", k: base64url.encode(secret), kid: "s" },
        { ...(await exportJWK(rsa.publicKey)), kid: "r" },
      ],
    });
    const hs = await new SignJWT({ sub: "caller" })
      .setProtectedHeader({ alg: "HS256", kid: "s" })
      .setExpirationTime("1m")
      .sign(secret);
    const rs = await new SignJWT({ sub: "caller" })
      .setProtectedHeader({ alg: "RS256", kid: "r" })
      .setExpirationTime("1m")
      .sign(rsa.privateKey);
    expect(await verdict({ jwt: { jwks } }, hs)).toBe(notAllowed);
    expect(await verdict({ jwt: { jwks } }, rs)).toBe("ok");
  });

  it("refuses keys that cannot be used safely, at construction", async () => {
    const weak = generateKeyPairSync("rsa", { modulusLength: 1024 });
    const k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" });
    const pss = generateKeyPairSync("rsa-pss", { modulusLength: 2048 });
    const cases: Array<[KeyInput | string, string]> = [
      [encoder.encode("too-short-secret"), "short secret"],
      [encoder.encode("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n"), "broken PEM"],
      [weak.publicKey, "1024-bit RSA"],
      [k1.publicKey, "secp256k1"],
      [pss.publicKey, "RSA-PSS-only key (jose cannot use it on Node 20)"],
      [
        { kty: "oct", k: base64url.encode(new Uint8Array(rsa.publicKey.export({ type: "spki", format: "der" }))) },
        "oct JWK holding DER",
      ],
      ["a-string-secret-that-is-long-enough-to-pass", "string that is no PEM"],
      [{ kty: "oct", k: base64url.encode(encoder.encode(rsaPem)) }, "oct JWK holding a PEM"],
    ];
    for (const [key, name] of cases) {
      expect(() => new PrincipalBindingMiddleware({ jwt: { key: key as KeyInput } }), name).toThrow(
        optionError("jwt.key"),
      );
    }
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

describe("PrincipalBindingMiddleware: anonymous calls once authentication is configured", () => {
  it("refuses calls without a principal by default, with every kind of authenticator", async () => {
    const configs: Array<[string, PrincipalBindingMiddlewareOptions]> = [
      ["jwt", { jwt: { key: secret } }],
      ["client certificates (the default)", {}],
      ["trusted proxy", { trustedProxies: ["10.0.0.9"], acceptClientCertificates: false }],
    ];
    for (const [name, options] of configs) {
      expect(await rejection(options, { procedure: "resourcelease::drain" }), name).toMatchObject({
        status: "unauthenticated",
        code: "omnirelay.auth.required",
        metadata: { procedure: "resourcelease::drain" },
      });
    }
    const proxied = await principalSeen(configs[2]![1], {
      headers: { "x-client-principal": "ops" },
      security: { clientCertificateVerified: false, remoteAddress: "10.0.0.9" },
    });
    expect(proxied?.principal).toBe("ops");
  });

  it("lets anonymous callers reach only the allow-listed procedures", async () => {
    const options = { jwt: { key: secret }, allowAnonymous: ["RESOURCELEASE::STATS", "health::*"] };
    expect((await principalSeen(options, { procedure: "resourcelease::stats" }))?.principal).toBeUndefined();
    expect(await rejection(options, { procedure: "resourcelease::lease" })).toMatchObject({
      code: "omnirelay.auth.required",
    });
    // A caller that presents a bad token is refused even on an open procedure.
    expect(await rejection(options, { procedure: "resourcelease::stats", headers: bearer("junk") })).toMatchObject({
      code: "omnirelay.auth.invalid_token",
    });
    // A good token is still bound there.
    const token = await hsToken({ sub: "w" });
    expect((await principalSeen(options, { headers: bearer(token) }))?.principal).toBe("w");
  });

  it("lets anonymous calls through only with requireAuthentication: false", async () => {
    const meta = await principalSeen({ jwt: { key: secret }, requireAuthentication: false }, {});
    expect(meta?.principal).toBeUndefined();
    expect(await rejection({ jwt: { key: secret }, requireAuthentication: true }, {})).toMatchObject({
      code: "omnirelay.auth.required",
    });
  });

  it("refuses a configuration in which nobody could ever authenticate", () => {
    expect(() => new PrincipalBindingMiddleware({ acceptClientCertificates: false })).toThrow(
      optionError("requireAuthentication"),
    );
    expect(
      () => new PrincipalBindingMiddleware({ acceptClientCertificates: false, requireAuthentication: false }),
    ).not.toThrow();
    expect(() => new PrincipalBindingMiddleware({ requireAuthentication: "yes" as never })).toThrow(
      optionError("requireAuthentication"),
    );
    expect(() => new PrincipalBindingMiddleware({ allowAnonymous: [""] })).toThrow(optionError("allowAnonymous"));
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
    expect(await rejection(hsOptions, { security: unverified })).toMatchObject({ code: "omnirelay.auth.required" });
  });

  it("ignores and strips a spoofed principal header from an untrusted address", async () => {
    const spoofed = {
      headers: { "x-client-principal": "admin", "rpc-principal": "admin", other: "kept" },
      security: { clientCertificateVerified: false, remoteAddress: "203.0.113.7" },
    };
    expect(await rejection({ trustedProxies: ["127.0.0.1"] }, spoofed)).toMatchObject({
      code: "omnirelay.auth.required",
    });
    const meta = await principalSeen({ trustedProxies: ["127.0.0.1"], requireAuthentication: false }, spoofed);
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
    expect(await rejection({}, { principal: "smuggled" })).toMatchObject({ code: "omnirelay.auth.required" });
    const meta = await principalSeen({ requireAuthentication: false }, { principal: "smuggled" });
    expect(meta?.principal).toBeUndefined();
  });

  it("validates its options", () => {
    expect(() => new PrincipalBindingMiddleware({ trustedProxies: ["10.0.0.0/8"] })).toThrow(
      optionError("trustedProxies"),
    );
    expect(() => new PrincipalBindingMiddleware({ jwt: {} })).toThrow(optionError("jwt"));
    expect(
      () => new PrincipalBindingMiddleware({ jwt: { key: secret, jwks: createLocalJWKSet({ keys: [] }) } }),
    ).toThrow(optionError("jwt"));
    expect(() => new PrincipalBindingMiddleware({ jwt: { key: secret, issuer: " " } })).toThrow(
      optionError("jwt.issuer"),
    );
    expect(() => new PrincipalBindingMiddleware({ principalHeaders: [" "] })).toThrow(optionError("principalHeaders"));
  });
});
