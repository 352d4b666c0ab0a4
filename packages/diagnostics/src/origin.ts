import type { IncomingMessage } from "node:http";
import type { TLSSocket } from "node:tls";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";

// Cross-site request forgery defence of the state-changing endpoints. A browser sends a "simple" cross-origin POST
// (Content-Type text/plain, no custom header) without a preflight, so any web page a developer or operator opens
// could flip the log level or tracing of a node it can reach (loopback included). Such a request always carries
// `Origin` (and `Sec-Fetch-Site` in current browsers); a CLI, curl or a program sends neither.

/**
 * Validates `allowedOrigins`: each entry is a serialized origin such as `https://ops.example.com` (http or https,
 * no path). Returns them normalised (`URL.origin`: lower-case host, default port dropped).
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) for anything else.
 */
export function parseAllowedOrigins(value: unknown): ReadonlySet<string> {
  if (value === undefined) return new Set();
  if (!Array.isArray(value))
    throw OmniRelayError.invalidOption("allowedOrigins", "Option 'allowedOrigins' must be an array.");
  const origins = new Set<string>();
  for (const entry of value) {
    const origin = typeof entry === "string" ? originOf(entry) : undefined;
    const bare = typeof entry === "string" && /^[a-z][a-z0-9+.-]*:\/\/[^/?#]+\/?$/i.test(entry.trim());
    if (origin === undefined || !bare) {
      throw OmniRelayError.invalidOption(
        "allowedOrigins",
        `Option 'allowedOrigins' must list origins such as 'https://ops.example.com', got '${String(entry)}'.`,
      );
    }
    origins.add(origin);
  }
  return origins;
}

/**
 * Refuses a state-changing request made by a browser page of a foreign origin: an `Origin` header must be the
 * control plane's own origin (from `Host` and the connection's scheme) or in `allowed`; without `Origin`,
 * `Sec-Fetch-Site: cross-site` or `same-site` is refused. Requests with neither header (CLI, curl) pass.
 * @throws OmniRelayError permission-denied `omnirelay.control.origin_forbidden`.
 */
export function assertSameOrigin(req: IncomingMessage, allowed: ReadonlySet<string>): void {
  const origin = single(req.headers.origin);
  if (origin !== undefined) {
    const normalised = originOf(origin);
    if (normalised !== undefined && (allowed.has(normalised) || normalised === ownOrigin(req))) return;
    throw forbidden(`Requests from origin '${clip(origin)}' may not change the control plane.`, {
      origin: clip(origin),
    });
  }
  const site = single(req.headers["sec-fetch-site"])?.trim().toLowerCase();
  if (site === "cross-site" || site === "same-site") {
    throw forbidden("Cross-site requests may not change the control plane.", { secFetchSite: site });
  }
}

/**
 * Refuses a state-changing request whose body is not declared as JSON (`application/json`, parameters allowed).
 * Browsers cannot send that type cross-origin without a CORS preflight, which the control plane never grants.
 * @throws OmniRelayError invalid-argument `omnirelay.control.unsupported_media_type` (sent as HTTP 415).
 */
export function assertJsonContentType(req: IncomingMessage): void {
  const header = single(req.headers["content-type"]);
  const type = header?.split(";")[0]?.trim().toLowerCase();
  if (type === "application/json") return;
  throw new OmniRelayError({
    status: "invalid-argument",
    code: ErrorCodes.controlPlane.unsupportedMediaType,
    message: "State-changing control-plane requests need 'Content-Type: application/json'.",
    metadata: { contentType: header === undefined ? "(none)" : clip(header) },
  });
}

function forbidden(message: string, metadata: Record<string, string>): OmniRelayError {
  return new OmniRelayError({
    status: "permission-denied",
    code: ErrorCodes.controlPlane.originForbidden,
    message,
    metadata,
  });
}

function ownOrigin(req: IncomingMessage): string | undefined {
  const host = single(req.headers.host);
  if (host === undefined) return undefined;
  const scheme = (req.socket as Partial<TLSSocket>).encrypted === true ? "https" : "http";
  return originOf(`${scheme}://${host}`);
}

function originOf(text: string): string | undefined {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    return undefined;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return undefined;
  return url.origin;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function clip(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
