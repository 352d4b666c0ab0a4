import { type ServerResponse, STATUS_CODES } from "node:http";
import { ErrorCodes } from "../../errors/codes.js";
import { OmniRelayError } from "../../errors/omnirelay-error.js";
import { parseStatus, statusInfo, statusTable } from "../../errors/status.js";

// Failures of the HTTP exchange itself have an HTTP status of their own that generic clients, proxies and load
// balancers understand; the body and `Rpc-Status` still carry the status of the shared table.
const httpStatusByCode: ReadonlyMap<string, number> = new Map([
  [ErrorCodes.rpc.requestTooLarge, 413],
  [ErrorCodes.rpc.requestTimeout, 408],
  [ErrorCodes.rpc.requestHeadersTooLarge, 431],
]);

/** The HTTP status an error is answered with: the shared table's, except for the codes above. */
export function httpStatusOf(error: OmniRelayError): number {
  return httpStatusByCode.get(error.code) ?? statusInfo(error.status).httpStatus;
}

function errorBody(error: OmniRelayError): string {
  const body: Record<string, unknown> = {
    status: statusInfo(error.status).wireName,
    code: error.code,
    message: error.message,
  };
  if (Object.keys(error.metadata).length > 0) body.metadata = error.metadata;
  return JSON.stringify(body);
}

/**
 * A complete `Connection: close` HTTP/1.1 error response as raw bytes, for a socket that has no `ServerResponse`
 * (the request could not be parsed or did not arrive in time).
 */
export function rawErrorResponse(error: OmniRelayError): string {
  const status = httpStatusOf(error);
  const text = errorBody(error);
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? "Error"}\r\n` +
    "content-type: application/json; charset=utf-8\r\n" +
    `content-length: ${Buffer.byteLength(text)}\r\n` +
    "connection: close\r\n" +
    "rpc-transport: http\r\n" +
    `rpc-status: ${statusInfo(error.status).wireName}\r\n` +
    `rpc-error-code: ${headerSafe(error.code)}\r\n` +
    `rpc-error-message: ${headerSafe(error.message)}\r\n` +
    `\r\n${text}`
  );
}

/** Makes a string safe for an HTTP header value (Latin-1, no control characters). */
export function headerSafe(value: string, max = 512): string {
  return value.replace(/[^\x20-\x7e]/g, "?").slice(0, max);
}

/**
 * Writes an error response: status from the shared table (or {@link httpStatusOf}'s exception), `Rpc-*` headers
 * and the JSON error body.
 */
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
  const text = errorBody(error);
  res.writeHead(httpStatusOf(error), {
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

/**
 * Rebuilds an `OmniRelayError` from an HTTP error response, whatever the remote sent: a body field is taken only when
 * it has its type (`status` a known status name or gRPC code, `code` and `message` strings, `metadata` an object of
 * strings); otherwise the `Rpc-Status`, `Rpc-Error-Code` and `Rpc-Error-Message` headers, then the HTTP status, stand
 * in. It never throws.
 */
export function readError(
  httpStatus: number,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
): OmniRelayError {
  let parsed: Record<string, unknown> = {};
  try {
    const value: unknown = JSON.parse(body.toString("utf8"));
    if (value && typeof value === "object" && !Array.isArray(value)) parsed = value as Record<string, unknown>;
  } catch {
    // not JSON: fall back to the headers
  }
  const header = (name: string) => {
    const v = headers[name];
    return Array.isArray(v) ? v[0] : v;
  };
  const text = (value: unknown) => (typeof value === "string" ? value : undefined);
  const status = [parsed.status, header("rpc-status")].find((s) => parseStatus(s) !== undefined);
  return OmniRelayError.fromWire({
    status: status ?? fallbackStatus(httpStatus),
    code: text(parsed.code) ?? header("rpc-error-code") ?? `omnirelay.http.${httpStatus}`,
    message: text(parsed.message) ?? header("rpc-error-message") ?? `HTTP ${httpStatus}`,
    metadata: parsed.metadata,
  });
}

/** The first status in the shared table with this HTTP code (the table is the only mapping). */
function fallbackStatus(httpStatus: number): string {
  for (const info of statusTable.values())
    if (info.httpStatus === httpStatus && info.status !== "ok") return info.wireName;
  return "UNKNOWN";
}
