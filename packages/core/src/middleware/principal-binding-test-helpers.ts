import { base64url, type JWTPayload, type KeyInput, SignJWT } from "jose";
import { expect } from "vitest";
import type { RequestMeta } from "../dispatcher/types.js";
import { ErrorCodes } from "../errors/codes.js";
import { PrincipalBindingMiddleware, type PrincipalBindingMiddlewareOptions } from "./principal-binding.js";
import { makeRequest, recordingDispatcher } from "./test-helpers.js";

// Tokens, options and one-call probes shared by the principal-binding tests.

export const secret = new TextEncoder().encode("a-test-secret-that-is-at-least-32-bytes-long!");
export const issuer = "https://issuer.test";
export const audience = "omnirelay";
export const encoder = new TextEncoder();

export async function hsToken(claims: JWTPayload, options: { key?: Uint8Array; expiresIn?: string | number } = {}) {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer(issuer)
    .setAudience(audience)
    .setIssuedAt()
    .setExpirationTime(options.expiresIn ?? "5m")
    .sign(options.key ?? secret);
}

/** A token with `alg` signed by `key`, expiring in a minute (unless `claims.exp` says otherwise). */
export async function signed(alg: string, key: KeyInput, claims: JWTPayload = { sub: "caller" }) {
  const jwt = new SignJWT(claims).setProtectedHeader({ alg });
  if (!("exp" in claims)) jwt.setExpirationTime("1m");
  return jwt.sign(key);
}

/** An unsigned `alg: none` token (jose will not make one). */
export function unsecured(claims: JWTPayload): string {
  const part = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${part({ alg: "none", typ: "JWT" })}.${part({ exp: Math.floor(Date.now() / 1000) + 60, ...claims })}.`;
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}

export const procedures = ["resourcelease::stats", "resourcelease::lease", "resourcelease::drain"];

export async function principalSeen(options: PrincipalBindingMiddlewareOptions, meta: Partial<RequestMeta>) {
  const { dispatcher, seen } = recordingDispatcher([new PrincipalBindingMiddleware(options)], procedures);
  await dispatcher.dispatch(makeRequest(meta));
  expect(seen).toHaveLength(1);
  return seen[0];
}

export async function rejection(options: PrincipalBindingMiddlewareOptions, meta: Partial<RequestMeta>) {
  const { dispatcher, seen } = recordingDispatcher([new PrincipalBindingMiddleware(options)], procedures);
  const error = await dispatcher.dispatch(makeRequest(meta)).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(seen).toHaveLength(0);
  return error;
}

/** `ok` when the token binds `caller`, else the rejection's `code/reason`. */
export async function verdict(options: PrincipalBindingMiddlewareOptions, token: string): Promise<string> {
  const { dispatcher, seen } = recordingDispatcher([new PrincipalBindingMiddleware(options)], procedures);
  try {
    await dispatcher.dispatch(makeRequest({ headers: bearer(token) }));
    return seen[0]?.principal === "caller" ? "ok" : `bound ${seen[0]?.principal}`;
  } catch (error) {
    const e = error as { code?: string; metadata?: Record<string, string> };
    return `${e.code}/${e.metadata?.reason}`;
  }
}

export const optionError = (option: string) =>
  expect.objectContaining({ code: ErrorCodes.resourceLease.optionsInvalid, metadata: { option } });

export const hsOptions: PrincipalBindingMiddlewareOptions = {
  jwt: { key: secret, issuer, audience, algorithms: ["HS256"] },
};
export const notAllowed = "omnirelay.auth.invalid_token/algorithm_not_allowed";
