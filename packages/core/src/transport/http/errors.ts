import type { ServerResponse } from "node:http";
import { OmniRelayError } from "../../errors/omnirelay-error.js";
import { statusInfo, statusTable } from "../../errors/status.js";

/** Makes a string safe for an HTTP header value (Latin-1, no control characters). */
export function headerSafe(value: string, max = 512): string {
  return value.replace(/[^\x20-\x7e]/g, "?").slice(0, max);
}

/** Writes an error response: status from the shared table, `Rpc-*` headers and the JSON error body. */
export function writeError(
  res: ServerResponse,
  error: OmniRelayError,
  extraHeaders: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const info = statusInfo(error.status);
  const body: Record<string, unknown> = { status: info.wireName, code: error.code, message: error.message };
  if (Object.keys(error.metadata).length > 0) body.metadata = error.metadata;
  const text = JSON.stringify(body);
  res.writeHead(info.httpStatus, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(text),
    "rpc-transport": "http",
    "rpc-encoding": "json",
    "rpc-status": info.wireName,
    "rpc-error-code": headerSafe(error.code),
    "rpc-error-message": headerSafe(error.message),
    ...extraHeaders,
  });
  res.end(text);
}

/** Rebuilds an `OmniRelayError` from an HTTP error response. */
export function readError(
  httpStatus: number,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
): OmniRelayError {
  let parsed: { status?: string; code?: string; message?: string; metadata?: Record<string, string> } = {};
  try {
    const value = JSON.parse(body.toString("utf8"));
    if (value && typeof value === "object") parsed = value;
  } catch {
    // not JSON: fall back to the headers
  }
  const header = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  return OmniRelayError.fromWire({
    status: parsed.status ?? header("rpc-status") ?? fallbackStatus(httpStatus),
    code: parsed.code ?? header("rpc-error-code") ?? `omnirelay.http.${httpStatus}`,
    message: parsed.message ?? header("rpc-error-message") ?? `HTTP ${httpStatus}`,
    ...(parsed.metadata ? { metadata: parsed.metadata } : {}),
  });
}

/** The first status in the shared table with this HTTP code (the table is the only mapping). */
function fallbackStatus(httpStatus: number): string {
  for (const info of statusTable.values())
    if (info.httpStatus === httpStatus && info.status !== "ok") return info.wireName;
  return "UNKNOWN";
}
