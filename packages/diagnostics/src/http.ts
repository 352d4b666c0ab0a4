import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import { ErrorCodes, isOmniRelayError, OmniRelayError, type TransportSecurity } from "@omnirelay/core";
import { statusInfo } from "@omnirelay/core/wire";

/** Writes a JSON response. */
export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "cache-control": "no-store",
  });
  res.end(text);
}

/** Codes whose HTTP status is more precise than the status table's (the body keeps the table's status). */
const httpStatusByCode: Readonly<Record<string, number>> = {
  [ErrorCodes.controlPlane.methodNotAllowed]: 405,
  [ErrorCodes.controlPlane.unsupportedMediaType]: 415,
};

/** Writes an error in the RPC surface's wire form: HTTP status by the status table, `{status, code, message}`. */
export function sendError(res: ServerResponse, error: unknown): void {
  const err = isOmniRelayError(error) ? error : OmniRelayError.from(error);
  const info = statusInfo(err.status);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const metadata = err.metadata && Object.keys(err.metadata).length > 0 ? { metadata: err.metadata } : {};
  const text = JSON.stringify({ status: info.wireName, code: err.code, message: err.message, ...metadata });
  res.writeHead(httpStatusByCode[err.code] ?? info.httpStatus, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "rpc-status": info.wireName,
    "rpc-error-code": err.code,
    "cache-control": "no-store",
  });
  res.end(text);
}

/** Request headers with lower-cased names, repeated headers joined. */
export function lowerHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    out[name.toLowerCase()] = Array.isArray(value) ? value.join(", ") : value;
  }
  return out;
}

/** What the TLS handshake proved about the client, in the shape PrincipalBindingMiddleware reads. */
export function transportSecurity(req: IncomingMessage): TransportSecurity {
  const socket = req.socket as Partial<TLSSocket> & { remoteAddress?: string };
  const remoteAddress = socket.remoteAddress;
  const base = remoteAddress ? { remoteAddress } : {};
  if (typeof socket.getPeerCertificate !== "function" || socket.authorized !== true) {
    return { clientCertificateVerified: false, ...base };
  }
  const subject = socket.getPeerCertificate()?.subject;
  const cn = subject && typeof subject.CN === "string" ? subject.CN : undefined;
  const full = subject
    ? Object.entries(subject)
        .map(([k, v]) => `${k}=${String(v)}`)
        .join(",")
    : undefined;
  const name = cn ?? (full || undefined);
  return { clientCertificateVerified: Boolean(name), ...(name ? { clientCertificateSubject: name } : {}), ...base };
}

/**
 * How much of an oversized body is read and dropped (in all) before the answer, so that a client still sending it
 * reads the answer rather than a connection reset; past it, or when `Content-Length` already says more, reading stops.
 */
const MAX_DISCARDED_BODY_BYTES = 16 * 1024 * 1024;

/**
 * Reads a small JSON object body. A body over `maxBytes` is refused with `Connection: close` set on `res`: its rest
 * is read and dropped (up to 16 MiB in all, not at all when `Content-Length` says more), and the connection closes
 * once the error answer is written, since the body may not have been read to its end.
 * @throws OmniRelayError invalid-argument `omnirelay.control.body_invalid` for an empty, oversized or non-object body;
 * cancelled `omnirelay.cancelled` when the client goes away mid-body.
 */
export async function readJsonObject(
  req: IncomingMessage,
  res: ServerResponse,
  maxBytes: number,
): Promise<Record<string, unknown>> {
  const declared = declaredLength(req);
  const body =
    declared !== undefined && declared > Math.max(maxBytes, MAX_DISCARDED_BODY_BYTES)
      ? "too-large"
      : await collectBody(req, maxBytes);
  if (body === "too-large") {
    res.setHeader("connection", "close");
    throw bodyInvalid(`The request body is larger than ${maxBytes} bytes.`);
  }
  const text = body.toString("utf8").trim();
  if (text.length === 0) throw bodyInvalid("A JSON object body is required.");
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw bodyInvalid("The request body is not valid JSON.");
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw bodyInvalid("The request body must be a JSON object.");
  }
  return value as Record<string, unknown>;
}

/** The `Content-Length` of a request, when it has a valid one. */
function declaredLength(req: IncomingMessage): number | undefined {
  const value = req.headers["content-length"];
  return value !== undefined && /^\d+$/.test(value) ? Number(value) : undefined;
}

/**
 * Collects a body of at most `maxBytes`. Past that the rest is read and dropped until the body ends or
 * `MAX_DISCARDED_BODY_BYTES` were read in all (then reading stops, the request paused): `"too-large"` either way.
 * Listeners, not `for await`: leaving a `for await` loop early destroys the request and with it the connection,
 * before the answer is written.
 */
function collectBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | "too-large"> {
  const discardLimit = Math.max(maxBytes, MAX_DISCARDED_BODY_BYTES);
  return new Promise((resolve, reject) => {
    // Already read by someone else: nothing more will come (as `for await` would see it).
    if (req.readableEnded) {
      resolve(Buffer.alloc(0));
      return;
    }
    if (req.destroyed) {
      reject(clientGone());
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const finish = (outcome: () => void): void => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onGone);
      req.off("close", onGone);
      outcome();
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.byteLength;
      if (size <= maxBytes) chunks.push(chunk);
      else chunks.length = 0;
      if (size > discardLimit) {
        req.pause();
        finish(() => resolve("too-large"));
      }
    };
    const onEnd = (): void => finish(() => resolve(size > maxBytes ? "too-large" : Buffer.concat(chunks)));
    const onGone = (): void => finish(() => reject(clientGone()));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onGone);
    req.on("close", onGone);
  });
}

function clientGone(): OmniRelayError {
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.rpc.cancelled,
    message: "The client went away while sending the request body.",
  });
}

function bodyInvalid(message: string): OmniRelayError {
  return new OmniRelayError({ status: "invalid-argument", code: ErrorCodes.controlPlane.bodyInvalid, message });
}
