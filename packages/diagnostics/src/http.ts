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
 * Reads a small JSON object body.
 * @throws OmniRelayError invalid-argument `omnirelay.control.body_invalid` for an empty, oversized or non-object body.
 */
export async function readJsonObject(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const buffer = chunk as Buffer;
    size += buffer.byteLength;
    if (size > maxBytes) {
      req.resume();
      throw bodyInvalid(`The request body is larger than ${maxBytes} bytes.`);
    }
    chunks.push(buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8").trim();
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

function bodyInvalid(message: string): OmniRelayError {
  return new OmniRelayError({ status: "invalid-argument", code: ErrorCodes.controlPlane.bodyInvalid, message });
}
