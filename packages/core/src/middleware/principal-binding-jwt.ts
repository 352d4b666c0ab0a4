import {
  createPublicKey,
  createSecretKey,
  type JsonWebKey,
  KeyObject,
  type PublicKeyInput,
  type webcrypto,
  X509Certificate,
} from "node:crypto";
import type { JWK, JWTVerifyGetKey, JWTVerifyOptions, KeyInput } from "jose";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import { numberOption } from "../wire/options.js";
import { optionalStrings } from "./options.js";

// Key handling of PrincipalBindingMiddleware's JWT verification. Internal: the public surface is
// `JwtVerificationOptions` in principal-binding.ts.
//
// Why this exists: jose treats any Uint8Array as an HMAC secret. Handed the PEM bytes of an RSA public key and no
// algorithm list, it verified an HS256 token signed with those (public!) bytes, which let anyone mint tokens. Here the
// accepted algorithms always come from what the key is, and bytes that hold a public key are never a secret.

/** The smallest shared secret accepted, in bytes (RFC 7518 §3.2: at least the hash size of HS256). */
export const MIN_SECRET_BYTES = 32;

/** The largest accepted clock skew, ms: beyond a few minutes `exp` stops meaning anything. */
export const MAX_CLOCK_TOLERANCE_MS = 300_000;

/** The clock skew allowed by default, ms. */
export const DEFAULT_CLOCK_TOLERANCE_MS = 5_000;

const HMAC = ["HS256", "HS384", "HS512"] as const;
const RSA = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] as const;
const EDDSA = ["EdDSA", "Ed25519"] as const;
const EC_BY_CURVE: Readonly<Record<string, string>> = {
  prime256v1: "ES256",
  "P-256": "ES256",
  secp384r1: "ES384",
  "P-384": "ES384",
  secp521r1: "ES512",
  "P-521": "ES512",
};

/** Every asymmetric algorithm a key set (JWKS) may use; a key set never verifies HS* tokens. */
export const ASYMMETRIC_ALGORITHMS: readonly string[] = [...RSA, "ES256", "ES384", "ES512", ...EDDSA];

/** A configured key, ready for `jwtVerify`, with the algorithms it may verify. */
export interface ResolvedJwtKey {
  readonly key: KeyObject | Uint8Array | JWTVerifyGetKey;
  /** Never empty; always a subset of the key type's family. */
  readonly algorithms: readonly string[];
  /** What the key is, for messages: `secret`, `rsa`, `ec P-256`, `ed25519`, `key set`. */
  readonly kind: string;
}

/** The parts of `JwtVerificationOptions` this module reads. */
export interface JwtKeyOptions {
  readonly key?: KeyInput | string;
  readonly jwks?: JWTVerifyGetKey;
  readonly algorithms?: readonly string[];
}

/**
 * Turns the configured `key` / `jwks` into what `jwtVerify` gets, and pins the algorithms to the key's type:
 * RSA → RS* and PS*, EC → the curve's ES*, Ed25519 → EdDSA / Ed25519, a shared secret → HS*.
 * `algorithms`, when given, narrows that list and must stay inside it.
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) for a key that is not
 * one of those, a PEM that does not parse, a secret shorter than 32 bytes, or algorithms outside the key's family.
 */
export function resolveJwtKey(jwt: JwtKeyOptions): ResolvedJwtKey {
  if ((jwt.key === undefined) === (jwt.jwks === undefined)) {
    throw OmniRelayError.invalidOption("jwt", "Option 'jwt' needs exactly one of 'key' or 'jwks'.");
  }
  const requested = optionalStrings("jwt.algorithms", jwt.algorithms);
  if (requested !== undefined && requested.length === 0) {
    throw OmniRelayError.invalidOption("jwt.algorithms", "Option 'jwt.algorithms' must list at least one algorithm.");
  }
  if (jwt.jwks !== undefined) {
    if (typeof jwt.jwks !== "function") {
      throw OmniRelayError.invalidOption(
        "jwt.jwks",
        "Option 'jwt.jwks' must be a key set resolver (createLocalJWKSet / createRemoteJWKSet).",
      );
    }
    return { key: jwt.jwks, algorithms: narrow(ASYMMETRIC_ALGORITHMS, requested, "key set"), kind: "key set" };
  }
  const { key, family, kind } = classify(jwt.key as KeyInput | string);
  return { key, algorithms: narrow(family, requested, kind), kind };
}

/** The `jwtVerify` options: pinned algorithms, required `exp`, clock tolerance, optional issuer and audience. */
export function buildVerifyOptions(
  jwt: {
    readonly issuer?: string | readonly string[];
    readonly audience?: string | readonly string[];
    readonly clockToleranceMs?: number;
  },
  algorithms: readonly string[],
): JWTVerifyOptions {
  const tolerance = numberOption("jwt.clockToleranceMs", jwt.clockToleranceMs, {
    min: 0,
    fallback: DEFAULT_CLOCK_TOLERANCE_MS,
  });
  if (tolerance > MAX_CLOCK_TOLERANCE_MS) {
    throw OmniRelayError.invalidOption(
      "jwt.clockToleranceMs",
      `Option 'jwt.clockToleranceMs' must be at most ${MAX_CLOCK_TOLERANCE_MS} (5 minutes).`,
    );
  }
  const options: JWTVerifyOptions = {
    algorithms: [...algorithms],
    requiredClaims: ["exp"],
    // jose counts in seconds; a fraction keeps the tolerance exact.
    clockTolerance: tolerance / 1000,
  };
  const issuer = claimValues("jwt.issuer", jwt.issuer);
  const audience = claimValues("jwt.audience", jwt.audience);
  if (issuer !== undefined) options.issuer = issuer;
  if (audience !== undefined) options.audience = audience;
  return options;
}

function claimValues(option: string, value: string | readonly string[] | undefined): string | string[] | undefined {
  if (value === undefined) return undefined;
  if (typeof value === "string") {
    if (value.trim().length === 0) throw OmniRelayError.invalidOption(option, `Option '${option}' must not be blank.`);
    return value;
  }
  const list = optionalStrings(option, value);
  if (list === undefined || list.length === 0)
    throw OmniRelayError.invalidOption(option, `Option '${option}' must not be empty.`);
  return list;
}

function narrow(family: readonly string[], requested: readonly string[] | undefined, kind: string): string[] {
  if (requested === undefined) return [...family];
  const outside = requested.filter((alg) => !family.includes(alg));
  if (outside.length > 0) {
    throw OmniRelayError.invalidOption(
      "jwt.algorithms",
      `Option 'jwt.algorithms' lists ${outside.join(", ")}, which a ${kind} key cannot verify; allowed: ${family.join(", ")}.`,
    );
  }
  return [...new Set(requested)];
}

interface Classified {
  readonly key: KeyObject | Uint8Array;
  readonly family: readonly string[];
  readonly kind: string;
}

function badKey(message: string): OmniRelayError {
  return OmniRelayError.invalidOption("jwt.key", message);
}

function classify(input: KeyInput | string): Classified {
  if (typeof input === "string") {
    if (!looksLikePem(input)) {
      throw badKey(
        "Option 'jwt.key' as a string must be a PEM public key or certificate; give a shared secret as bytes.",
      );
    }
    return fromPublicKey(pemPublicKey(Buffer.from(input, "utf8")));
  }
  if (input instanceof Uint8Array) return fromBytes(input);
  if (isKeyObject(input)) return fromKeyObject(input);
  if (isCryptoKey(input)) return fromKeyObject(KeyObject.from(input as webcrypto.CryptoKey));
  if (typeof input === "object" && input !== null && typeof (input as JWK).kty === "string")
    return fromJwk(input as JWK);
  throw badKey("Option 'jwt.key' must be a public key (KeyObject, CryptoKey, JWK, PEM) or a shared secret (bytes).");
}

function fromBytes(bytes: Uint8Array): Classified {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (looksLikePem(buffer.toString("latin1"))) return fromPublicKey(pemPublicKey(buffer));
  // DER is public too: a public key's bytes must never become an HMAC secret, in whatever encoding.
  const der = derPublicKey(buffer);
  if (der !== undefined) return fromPublicKey(der);
  return fromSecret(buffer);
}

function fromKeyObject(key: KeyObject): Classified {
  if (key.type === "secret") return fromSecret(key.export());
  // A private key verifies through its public half; jose wants the public one.
  return fromPublicKey(key.type === "private" ? createPublicKey(key) : key);
}

function fromJwk(jwk: JWK): Classified {
  let classified: Classified;
  if (jwk.kty === "oct") {
    if (typeof jwk.k !== "string") throw badKey("Option 'jwt.key' is an 'oct' JWK without 'k'.");
    classified = fromSecret(Buffer.from(jwk.k, "base64url"));
  } else {
    let key: KeyObject;
    try {
      key = createPublicKey({ key: jwk as JsonWebKey, format: "jwk" });
    } catch {
      throw badKey(`Option 'jwt.key' is a '${jwk.kty}' JWK that cannot be read as a public key.`);
    }
    classified = fromPublicKey(key);
  }
  // A JWK that names its algorithm verifies only that one.
  if (typeof jwk.alg === "string") {
    return { ...classified, family: narrow(classified.family, [jwk.alg], classified.kind) };
  }
  return classified;
}

function fromSecret(secret: Uint8Array): Classified {
  if (secret.byteLength < MIN_SECRET_BYTES) {
    throw badKey(`A shared secret in 'jwt.key' must be at least ${MIN_SECRET_BYTES} bytes.`);
  }
  const bytes = Buffer.from(secret);
  if (looksLikePem(bytes.toString("latin1")) || derPublicKey(bytes) !== undefined) {
    throw badKey("Option 'jwt.key' is a secret that holds a public key; a key is never used as a shared secret.");
  }
  return { key: createSecretKey(secret), family: HMAC, kind: "secret" };
}

function fromPublicKey(key: KeyObject): Classified {
  const type = key.asymmetricKeyType;
  if (type === "rsa") {
    const bits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    if (bits < 2048) throw badKey(`Option 'jwt.key' is a ${bits}-bit RSA key; RS*/PS* need at least 2048 bits.`);
    return { key, family: RSA, kind: "rsa" };
  }
  if (type === "rsa-pss") {
    // jose cannot use an RSA-PSS-only key object on Node 20 (no JWK export); the plain RSA form verifies PS* too.
    throw badKey("Option 'jwt.key' is an RSA-PSS-only key; give the same key as a plain RSA public key (SPKI).");
  }
  if (type === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve ?? "";
    const alg = EC_BY_CURVE[curve];
    if (alg === undefined) throw badKey(`Option 'jwt.key' is an EC key on '${curve}', which JWT (ES*) does not use.`);
    return { key, family: [alg], kind: `ec ${curve}` };
  }
  if (type === "ed25519") return { key, family: EDDSA, kind: "ed25519" };
  throw badKey(`Option 'jwt.key' is a '${String(type)}' key, which this verifier does not support.`);
}

function looksLikePem(text: string): boolean {
  return /-----BEGIN [A-Z0-9 ]+-----/.test(text);
}

function pemPublicKey(pem: Buffer): KeyObject {
  try {
    // Reads PUBLIC KEY, RSA PUBLIC KEY and private keys (their public half).
    return createPublicKey(pem);
  } catch {
    // and certificates.
  }
  try {
    return new X509Certificate(pem).publicKey;
  } catch {
    throw badKey("Option 'jwt.key' holds a PEM that is not a readable key or certificate.");
  }
}

function derPublicKey(der: Buffer): KeyObject | undefined {
  // Public encodings, then private ones (a private key verifies through its public half).
  for (const type of ["spki", "pkcs1", "pkcs8", "sec1"] as const) {
    try {
      // Node reads private encodings here too; its typings list only the public ones.
      return createPublicKey({ key: der, format: "der", type } as unknown as PublicKeyInput);
    } catch {
      // not this encoding
    }
  }
  try {
    return new X509Certificate(der).publicKey;
  } catch {
    return undefined;
  }
}

function isKeyObject(value: unknown): value is KeyObject {
  return (
    value instanceof KeyObject || (value as { [Symbol.toStringTag]?: unknown })?.[Symbol.toStringTag] === "KeyObject"
  );
}

function isCryptoKey(value: unknown): boolean {
  return (value as { [Symbol.toStringTag]?: unknown })?.[Symbol.toStringTag] === "CryptoKey";
}
