import { createHmac } from "node:crypto";

const b64 = (value: string | Buffer) => Buffer.from(value).toString("base64url");

/**
 * Signs an HS256 JWT with node:crypto (the package does not depend on jose; the hub verifies through core's
 * PrincipalBindingMiddleware, which does). `exp` defaults to one hour from now.
 */
export function signHs256(secret: string, claims: Record<string, unknown>): string {
  const body = { iat: Math.floor(Date.now() / 1000), exp: Math.floor(Date.now() / 1000) + 3600, ...claims };
  const signingInput = `${b64(JSON.stringify({ alg: "HS256", typ: "JWT" }))}.${b64(JSON.stringify(body))}`;
  return `${signingInput}.${createHmac("sha256", secret).update(signingInput).digest("base64url")}`;
}
