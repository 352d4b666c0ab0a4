import type { IncomingMessage, ServerResponse } from "node:http";
import type { TLSSocket } from "node:tls";
import type { TransportSecurity } from "../../dispatcher/types.js";
import { ErrorCodes } from "../../errors/codes.js";
import { OmniRelayError } from "../../errors/omnirelay-error.js";
import { BODY_BUDGET_RETRY_AFTER_MS, type BodyBudget } from "./body-budget.js";

// What the HTTP inbound reads off a request before the dispatcher sees it: headers, the caller's transport identity
// and the body, within the inbound's size limits. Internal to the transport.

/** The body size limits of an inbound (see `HttpInboundOptions`). */
export interface BodyLimits {
  readonly maxBodyBytes: number;
  readonly maxDiscardedBodyBytes: number;
  /** The bytes all bodies still arriving may hold together (`maxBufferedBodyBytes`), shared by the inbound. */
  readonly budget: BodyBudget;
}

/** The error a request body over `maxBodyBytes` is answered with. */
export function requestTooLarge(maxBodyBytes: number): OmniRelayError {
  return new OmniRelayError({
    status: "invalid-argument",
    code: ErrorCodes.rpc.requestTooLarge,
    message: `The request body exceeds ${maxBodyBytes} bytes.`,
    metadata: {
      field: "body",
      limit: String(maxBodyBytes),
    },
  });
}

/**
 * Reads the request body. An oversized one is read and discarded up to `maxDiscardedBodyBytes` (so the client
 * reads our 413 instead of a reset), then refused with `Connection: close`. The bytes read count against the shared
 * `budget` until the body is complete (or refused, or its client goes away); a body that does not fit — its
 * `Content-Length` up front, else a chunk as it arrives — is refused at once with `Connection: close` and
 * `Retry-After`, the rest of it unread.
 * @throws OmniRelayError invalid-argument `omnirelay.request.too_large`; resource-exhausted
 * `omnirelay.request.body_budget_exhausted`; cancelled `omnirelay.cancelled` when the client goes away mid-body.
 */
export async function readBody(req: IncomingMessage, res: ServerResponse, limits: BodyLimits): Promise<Uint8Array> {
  const declared = declaredLength(req);
  const tooLarge = () => {
    res.setHeader("connection", "close");
    return requestTooLarge(limits.maxBodyBytes);
  };
  if (declared !== undefined && declared > limits.maxDiscardedBodyBytes) throw tooLarge();
  if (declared !== undefined && declared <= limits.maxBodyBytes && !limits.budget.fits(declared)) {
    throw budgetExhausted(res, limits.budget);
  }
  const read = await collectBody(req, limits);
  if (read === "too-large") throw tooLarge();
  if (read === "busy") throw budgetExhausted(res, limits.budget);
  return read;
}

/** The refusal of a body over the shared budget; the connection is closed under the answer, the body left unread. */
export function budgetExhausted(res: ServerResponse, budget: BodyBudget): OmniRelayError {
  res.setHeader("connection", "close");
  res.setHeader("retry-after", String(Math.ceil(BODY_BUDGET_RETRY_AFTER_MS / 1000)));
  return budget.exhausted();
}

/** The request headers with lower-case names, repeated ones joined with `, `. */
export function lowerHeaders(req: IncomingMessage): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(req.headers)) {
    if (v === undefined) continue;
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
  }
  return out;
}

/** The caller's verified client certificate subject (when there is one) and remote address. */
export function security(req: IncomingMessage): TransportSecurity {
  const socket = req.socket as TLSSocket;
  const remoteAddress = socket.remoteAddress;
  if (typeof socket.getPeerCertificate !== "function" || !socket.authorized) {
    return { clientCertificateVerified: false, ...(remoteAddress ? { remoteAddress } : {}) };
  }
  const cert = socket.getPeerCertificate();
  const subject = cert?.subject;
  const cn = subject && typeof subject.CN === "string" ? subject.CN : undefined;
  const full = subject
    ? Object.entries(subject)
        .map(([k, v]) => `${k}=${v}`)
        .join(",")
    : undefined;
  const name = cn ?? full;
  return {
    clientCertificateVerified: Boolean(name),
    ...(name ? { clientCertificateSubject: name } : {}),
    ...(remoteAddress ? { remoteAddress } : {}),
  };
}

/** The `Content-Length` of a request, when it has a valid one. */
export function declaredLength(req: IncomingMessage): number | undefined {
  const value = req.headers["content-length"];
  if (value === undefined || !/^\d+$/.test(value)) return undefined;
  return Number(value);
}

/**
 * Collects a request body of at most `maxBodyBytes`. Past that the rest is read and dropped until the body ends
 * (`"too-large"`) or `maxDiscardedBodyBytes` were read in all (`"too-large"`, reading stops and the body is left
 * unread). The chunks kept count against `budget` until the outcome; one that does not fit stops reading
 * (`"busy"`). Rejects with `omnirelay.cancelled` when the client goes away first.
 */
function collectBody(req: IncomingMessage, limits: BodyLimits): Promise<Uint8Array | "too-large" | "busy"> {
  const { maxBodyBytes: limit, maxDiscardedBodyBytes: discardLimit, budget } = limits;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    /** Bytes of `chunks`, taken from the budget. */
    let held = 0;
    const drop = () => {
      chunks.length = 0;
      budget.release(held);
      held = 0;
    };
    const finish = (outcome: () => void) => {
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("error", onGone);
      req.off("close", onGone);
      budget.release(held);
      held = 0;
      outcome();
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) {
        if (!budget.take(chunk.length)) {
          req.pause();
          drop();
          finish(() => resolve("busy"));
          return;
        }
        held += chunk.length;
        chunks.push(chunk);
      } else if (chunks.length > 0) drop();
      if (size > discardLimit) {
        req.pause();
        finish(() => resolve("too-large"));
      }
    };
    const onEnd = () =>
      finish(() => {
        if (size > limit) resolve("too-large");
        else resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      });
    const onGone = () =>
      finish(() =>
        reject(
          new OmniRelayError({
            status: "cancelled",
            code: ErrorCodes.rpc.cancelled,
            message: "The client went away while sending the request.",
          }),
        ),
      );
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("error", onGone);
    req.on("close", onGone);
  });
}
