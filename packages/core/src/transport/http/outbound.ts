import { constants } from "node:buffer";
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest } from "node:https";
import { decodeJsonBody, encodeJsonBody } from "../../dispatcher/json-codec.js";
import type { ProcedureDefinition, UnaryOutbound, UnaryRequest, UnaryResponse } from "../../dispatcher/types.js";
import { ErrorCodes } from "../../errors/codes.js";
import { isOmniRelayError, OmniRelayError } from "../../errors/omnirelay-error.js";
import { maxDeadlineHorizonMs } from "../../middleware/deadline-headers.js";
import type { SessionChannel, SessionChannelOptions } from "../../resourcelease/session-channel.js";
import { type Clock, systemClock } from "../../util/clock.js";
import { neverAborts } from "../../util/signals.js";
import { integerOption } from "../../wire/options.js";
import { responseSite } from "../../wire/site.js";
import { headerSafe, readError } from "./errors.js";
import { openHttpSession } from "./session-client.js";

/** TLS settings of an {@link HttpOutbound}: the CA to trust and, for mutual TLS, the client certificate. */
export interface HttpOutboundTlsOptions {
  readonly ca?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly key?: string | Buffer;
  /** Server name to verify (SNI), when it differs from the URL's host. */
  readonly servername?: string;
}

/** Options of an {@link HttpOutbound}. */
export interface HttpOutboundOptions {
  /** The dispatcher's URL, e.g. `http://127.0.0.1:7420`; calls POST to it. */
  readonly url: string;
  /** Per-call timeout when the request carries no deadline. @defaultValue 30000 */
  readonly timeoutMs?: number;
  readonly tls?: HttpOutboundTlsOptions;
  /** Most sockets kept per host. @defaultValue 64 */
  readonly maxSockets?: number;
  /** Headers sent with every call (e.g. `authorization`). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Time source of deadlines. @defaultValue `systemClock` */
  readonly clock?: Clock;
  /**
   * Largest answer body a call takes, in bytes. An answer that declares more (`Content-Length`) or sends more is not
   * read any further: the request is destroyed (its connection closed) and the call rejects with resource-exhausted
   * `omnirelay.response.too_large` (metadata `limit`). Guards the client against a broken or hostile server that
   * answers without end. At most `buffer.constants.MAX_LENGTH`. @defaultValue 67108864 (64 MiB)
   */
  readonly maxResponseBytes?: number;
}

/** {@link HttpOutboundOptions.maxResponseBytes}'s default: 64 MiB. */
const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

const forwarded = new Set(["traceparent", "tracestate", "authorization"]);

/** Calls a remote dispatcher over HTTP/1.1 keep-alive (or HTTPS / mutual TLS). */
export class HttpOutbound implements UnaryOutbound {
  private readonly url: URL;
  private readonly agent: HttpAgent;
  private readonly options: HttpOutboundOptions;
  private readonly maxResponseBytes: number;

  /**
   * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` for a URL that is not http(s) or a
   * `maxResponseBytes` that is not a positive integer.
   */
  constructor(options: HttpOutboundOptions) {
    let url: URL;
    try {
      url = new URL(options.url);
    } catch {
      throw OmniRelayError.invalidOption("url", `Invalid URL '${options.url}'.`);
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") {
      throw OmniRelayError.invalidOption("url", "The URL must be http or https.");
    }
    this.url = url;
    this.options = options;
    this.maxResponseBytes = integerOption("maxResponseBytes", options.maxResponseBytes, {
      min: 1,
      max: constants.MAX_LENGTH,
      fallback: DEFAULT_MAX_RESPONSE_BYTES,
    });
    const common = { keepAlive: true, maxSockets: options.maxSockets ?? 64 };
    this.agent =
      url.protocol === "https:"
        ? (new HttpsAgent({ ...common, ...(options.tls ?? {}) }) as unknown as HttpAgent)
        : new HttpAgent(common);
  }

  /**
   * Sends one call. Resolves with the response body; an error response becomes the `OmniRelayError` the server sent
   * (status and code kept); a connection failure is unavailable `omnirelay.transport.unavailable`; a call past its
   * deadline is deadline-exceeded `omnirelay.deadline_exceeded`, without sending it when the deadline has already
   * passed. A deadline further than `maxDeadlineHorizonMs` away is sent as that far. An answer larger than
   * `maxResponseBytes` is resource-exhausted `omnirelay.response.too_large`; one that is not this procedure's response
   * is internal `omnirelay.response.invalid`. Whatever the server answers, the call settles and nothing is thrown
   * outside it.
   */
  call<Req, Res>(definition: ProcedureDefinition<Req, Res>, request: UnaryRequest<Req>): Promise<UnaryResponse<Res>> {
    const { meta } = request;
    const body = encodeJsonBody(definition.request.write(request.message, "json"));
    const clock = this.options.clock ?? systemClock;
    const now = clock.now();
    const deadline = meta.deadline ?? now + (this.options.timeoutMs ?? 30_000);
    const ttl = Math.min(Math.ceil(deadline - now), maxDeadlineHorizonMs);
    if (!(ttl > 0)) {
      return Promise.reject(
        new OmniRelayError({
          status: "deadline-exceeded",
          code: ErrorCodes.rpc.deadlineExceeded,
          message: "The call's deadline passed before it was sent.",
        }),
      );
    }
    const headers: Record<string, string | number> = {
      "content-type": "application/json",
      "content-length": body.byteLength,
      "rpc-procedure": meta.procedure,
      "rpc-encoding": "json",
      "rpc-ttl-ms": String(ttl),
      ...this.options.headers,
    };
    if (meta.caller) headers["rpc-caller"] = headerSafe(meta.caller);
    if (meta.shardKey) headers["rpc-shard-key"] = headerSafe(meta.shardKey);
    for (const [k, v] of Object.entries(meta.headers)) if (forwarded.has(k)) headers[k] = v;
    const send = this.url.protocol === "https:" ? httpsRequest : httpRequest;
    // A call given no signal of its own carries the shared one that never aborts: nothing to listen to.
    const watched = meta.signal !== neverAborts;
    return new Promise<UnaryResponse<Res>>((resolve, reject) => {
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(timer);
        if (watched) meta.signal.removeEventListener("abort", onAbort);
        fn();
      };
      const maxBytes = this.maxResponseBytes;
      const refuse = (err: OmniRelayError) => {
        finish(() => reject(err));
        req.destroy(); // the call has settled: what the destroyed socket emits is ignored
      };
      const req = send(this.url, { method: "POST", agent: this.agent, headers }, (res: IncomingMessage) => {
        res.on("error", (e) => finish(() => reject(transportError(e))));
        if (Number(res.headers["content-length"]) > maxBytes) return refuse(tooLarge(maxBytes));
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          if (settled) return;
          size += c.byteLength;
          if (size > maxBytes) return refuse(tooLarge(maxBytes));
          chunks.push(c);
        });
        res.on("end", () => {
          if (settled) return;
          // The outcome is built before the call settles: nothing the answer holds can throw after it.
          const outcome = settleWith(
            res,
            () => Buffer.concat(chunks, size),
            (data) => ({ message: definition.response.read(decodeJsonBody(data), responseSite()) }),
          );
          finish(() => (outcome.ok ? resolve(outcome.value) : reject(outcome.error)));
        });
      });
      const timer = clock.setTimeout(() => {
        const err = new OmniRelayError({
          status: "deadline-exceeded",
          code: ErrorCodes.rpc.deadlineExceeded,
          message: `No answer within ${ttl} ms.`,
        });
        req.destroy(err);
        finish(() => reject(err));
      }, ttl + 50);
      const onAbort = () => {
        const reason = meta.signal.reason;
        const err = isOmniRelayError(reason)
          ? reason
          : new OmniRelayError({
              status: "cancelled",
              code: ErrorCodes.rpc.cancelled,
              message: "The call was cancelled.",
            });
        req.destroy(err);
        finish(() => reject(err));
      };
      if (watched) {
        if (meta.signal.aborted) return onAbort();
        meta.signal.addEventListener("abort", onAbort, { once: true });
      }
      req.on("error", (e) => finish(() => reject(transportError(e))));
      req.end(body);
    });
  }

  /**
   * Opens a worker session (docs/protocol.md, "Worker sessions") as a WebSocket on the dispatcher's URL, with this
   * outbound's TLS settings and headers. `ResourceLeaseWorker` uses it through `ResourceLeaseClient`.
   */
  openSession(options: SessionChannelOptions): SessionChannel {
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.options.headers ?? {})) headers[k.toLowerCase()] = v;
    return openHttpSession(
      {
        url: this.url,
        headers,
        maxFrameBytes: 64 * 1024 * 1024,
        ...(this.options.tls ? { tls: this.options.tls } : {}),
      },
      options,
    );
  }

  /** Closes pooled sockets. */
  async close(): Promise<void> {
    this.agent.destroy();
  }
}

function transportError(cause: unknown): OmniRelayError {
  if (isOmniRelayError(cause)) return cause;
  return new OmniRelayError({
    status: "unavailable",
    code: ErrorCodes.rpc.transportUnavailable,
    message: `The remote dispatcher could not be reached: ${(cause as Error)?.message ?? String(cause)}`,
    cause,
  });
}

/** What an answer settles its call with: the response, or the error it is. */
type Outcome<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: OmniRelayError };

/**
 * Reads a whole answer: a 200 through `read` (an answer it cannot read is `omnirelay.response.invalid`), any other
 * status as the error the server sent. Never throws.
 */
function settleWith<T>(res: IncomingMessage, body: () => Buffer, read: (data: Buffer) => T): Outcome<T> {
  try {
    const data = body();
    if (res.statusCode === 200) return { ok: true, value: read(data) };
    return { ok: false, error: readError(res.statusCode ?? 500, res.headers, data) };
  } catch (error) {
    return { ok: false, error: badAnswer(error) };
  }
}

/** The error of an answer past `maxResponseBytes`. */
function tooLarge(limit: number): OmniRelayError {
  return new OmniRelayError({
    status: "resource-exhausted",
    code: ErrorCodes.rpc.responseTooLarge,
    message: `The remote's answer is larger than ${limit} bytes (maxResponseBytes); it was not read.`,
    metadata: { limit: String(limit) },
  });
}

/** An answer that does not fit its procedure's response message: the remote is not a compatible server. */
function badAnswer(cause: unknown): OmniRelayError {
  return new OmniRelayError({
    status: "internal",
    code: ErrorCodes.rpc.responseInvalid,
    message: `The remote answered something that is not this procedure's response: ${(cause as Error)?.message ?? cause}`,
    cause,
  });
}
