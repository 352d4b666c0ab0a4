import { createPrivateKey, generateKeyPairSync, type KeyObject } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { base64url, createLocalJWKSet, exportJWK, type JWK, type KeyInput, SignJWT } from "jose";
import { describe, expect, it, onTestFinished } from "vitest";
import { makeTestPki } from "../testing/pki.js";
import { PrincipalBindingMiddleware } from "./principal-binding.js";
import {
  encoder,
  notAllowed,
  optionError,
  secret,
  signed,
  unsecured,
  verdict,
} from "./principal-binding-test-helpers.js";

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
    const pkiDir = mkdtempSync(join(tmpdir(), "omnirelay-jwt-pki-"));
    const pki = await makeTestPki(pkiDir);
    onTestFinished(() => rmSync(pkiDir, { recursive: true, force: true }));
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
