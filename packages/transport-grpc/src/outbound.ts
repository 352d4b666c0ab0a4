import { type ChannelOptions, Client, credentials, Metadata, type ServiceError } from "@grpc/grpc-js";
import {
  ErrorCodes,
  isOmniRelayError,
  OmniRelayError,
  type ProcedureDefinition,
  type RequestMeta,
  systemClock,
  type UnaryOutbound,
  type UnaryRequest,
  type UnaryResponse,
} from "@omnirelay/core";
import { maxDeadlineHorizonMs } from "@omnirelay/core/middleware";
import { integerOption, responseSite, type SessionChannel, type SessionChannelOptions } from "@omnirelay/core/wire";
import { isLegalHeaderValue, isLegalMetadataKey, metadataToHeaders } from "./call-meta.js";
import { isResourceLeaseDefinition, selectResourceLeaseRpc } from "./mapping/procedures.js";
import { openGrpcSession } from "./session-client.js";
import { fromGrpcError } from "./status.js";

const MIB = 1024 * 1024;

/** TLS settings of a {@link GrpcOutbound}: the CA to trust and, for mutual TLS, the client certificate. */
export interface GrpcOutboundTlsOptions {
  /** CA that the server certificate must chain to. @defaultValue the system roots */
  readonly ca?: string | Buffer;
  /** Client certificate chain (mutual TLS); needs `key`. */
  readonly cert?: string | Buffer;
  /** Client private key (mutual TLS); needs `cert`. */
  readonly key?: string | Buffer;
  /** Server name to verify, when it differs from the address's host. */
  readonly servername?: string;
}

/** Options of a {@link GrpcOutbound}. */
export interface GrpcOutboundOptions {
  /** The remote inbound, `host:port` (any grpc-js target works, e.g. `dns:///svc:7421`). */
  readonly address: string;
  /** Use TLS; without it the channel is plaintext. */
  readonly tls?: GrpcOutboundTlsOptions;
  /** Deadline of a call whose request carries none. @defaultValue 30000 */
  readonly defaultTimeoutMs?: number;
  /** Metadata sent with every call (e.g. `authorization`). Keys are lower-cased. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Largest message sent or received. @defaultValue 4194304 (4 MiB) */
  readonly maxMessageBytes?: number;
}

// Request headers a caller's context passes on to the remote, as the HTTP outbound does.
const forwarded = ["traceparent", "tracestate", "authorization"] as const;

/**
 * Calls the ResourceLease procedures of a remote dispatcher over gRPC: `call()` takes a typed procedure
 * (`{namespace}::{verb}`) and its domain request, writes it straight into the matching protobuf message of
 * `omnirelay.resourcelease.v1` (with `rpc-namespace`), and reads the protobuf answer back into the domain response —
 * no JSON on the way — so callers see exactly what the HTTP transport gives them.
 */
export class GrpcOutbound implements UnaryOutbound, AsyncDisposable {
  private readonly client: Client;
  private readonly timeoutMs: number;
  private readonly staticMetadata: ReadonlyArray<readonly [string, string]>;
  private closed = false;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`) for bad options. */
  constructor(options: GrpcOutboundOptions) {
    if (typeof options?.address !== "string" || options.address.trim() === "")
      throw OmniRelayError.invalidOption("address");
    const { tls } = options;
    const defaultTimeoutMs = integerOption("defaultTimeoutMs", options.defaultTimeoutMs, { min: 1, fallback: 30_000 });
    const maxMessageBytes = integerOption("maxMessageBytes", options.maxMessageBytes, { min: 1, fallback: 4 * MIB });
    if (tls && Boolean(tls.cert) !== Boolean(tls.key))
      throw OmniRelayError.invalidOption("tls", "tls.cert and tls.key go together.");
    const entries: Array<readonly [string, string]> = [];
    for (const [rawKey, value] of Object.entries(options.metadata ?? {})) {
      const key = rawKey.toLowerCase();
      if (!isLegalMetadataKey(key) || !isLegalHeaderValue(value))
        throw OmniRelayError.invalidOption(`metadata.${rawKey}`);
      entries.push([key, value]);
    }
    this.staticMetadata = entries;
    this.timeoutMs = defaultTimeoutMs;
    const channelOptions: ChannelOptions = {
      "grpc.max_receive_message_length": maxMessageBytes,
      "grpc.max_send_message_length": maxMessageBytes,
      ...(tls?.servername
        ? { "grpc.ssl_target_name_override": tls.servername, "grpc.default_authority": tls.servername }
        : {}),
    };
    const channelCredentials = tls
      ? credentials.createSsl(
          tls.ca ? Buffer.from(tls.ca) : null,
          tls.key ? Buffer.from(tls.key) : null,
          tls.cert ? Buffer.from(tls.cert) : null,
        )
      : credentials.createInsecure();
    this.client = new Client(options.address.trim(), channelCredentials, channelOptions);
  }

  /**
   * Sends one call as the rpc that carries its procedure and resolves with the procedure's response.
   * @throws OmniRelayError the error the remote sent (status, code, message and metadata kept); unavailable
   *   `omnirelay.transport.unavailable` when the remote cannot be reached; deadline-exceeded
   *   `omnirelay.deadline_exceeded`; the signal's reason (or cancelled `omnirelay.cancelled`) when `meta.signal`
   *   aborts; unimplemented `omnirelay.grpc.procedure_unsupported` for a procedure that is not a ResourceLease verb;
   *   internal `omnirelay.response.invalid` for an answer that is not the procedure's response; failed-precondition
   *   `omnirelay.outbound.closed` after `close()`.
   */
  async call<Req, Res>(
    definition: ProcedureDefinition<Req, Res>,
    request: UnaryRequest<Req>,
  ): Promise<UnaryResponse<Res>> {
    const { meta } = request;
    if (this.closed) {
      throw new OmniRelayError({
        status: "failed-precondition",
        code: ErrorCodes.rpc.outboundClosed,
        message: "The gRPC outbound is closed.",
      });
    }
    const separator = meta.procedure.lastIndexOf("::");
    const namespace = separator > 0 ? meta.procedure.slice(0, separator).trim() : "";
    const rpc =
      namespace && isResourceLeaseDefinition(definition as ProcedureDefinition)
        ? selectResourceLeaseRpc(definition as ProcedureDefinition, request.message)
        : undefined;
    if (!rpc) {
      throw new OmniRelayError({
        status: "unimplemented",
        code: ErrorCodes.grpc.procedureUnsupported,
        message: `Procedure '${meta.procedure}' has no rpc in omnirelay.resourcelease.v1.ResourceLeaseService.`,
        metadata: { procedure: meta.procedure },
      });
    }
    const message = rpc.toRequest(definition.request.write(request.message, "proto"));
    const metadata = this.metadataFor(meta, namespace);
    // grpc-js reckons deadlines on the wall clock, so this reads the wall clock on purpose (an injected clock would
    // hand grpc-js a deadline from another timeline). Its server misreads a grpc-timeout of 2^31 ms or more (it keeps
    // the low 32 bits, often a negative number, and fails the call at once), so no deadline goes further than the
    // horizon.
    const now = systemClock.now();
    const deadline = Math.min(meta.deadline ?? now + this.timeoutMs, now + maxDeadlineHorizonMs);
    let headers: Record<string, string> | undefined;
    const response = await new Promise<unknown>((resolve, reject) => {
      if (meta.signal.aborted) {
        reject(abortError(meta.signal));
        return;
      }
      let settled = false;
      const onAbort = () => {
        if (settled) return;
        settled = true;
        call.cancel();
        reject(abortError(meta.signal));
      };
      const call = this.client.makeUnaryRequest(
        rpc.method.path,
        rpc.method.requestSerialize,
        rpc.method.responseDeserialize,
        message,
        metadata,
        { deadline },
        (error: ServiceError | null, value?: unknown) => {
          if (settled) return;
          settled = true;
          meta.signal.removeEventListener("abort", onAbort);
          if (error) reject(fromGrpcError(error));
          else resolve(value);
        },
      );
      call.on("metadata", (initial: Metadata) => {
        headers = responseHeaders(initial);
      });
      meta.signal.addEventListener("abort", onAbort, { once: true });
    });
    let answer: Res;
    try {
      answer = definition.response.read(rpc.fromResponse(response as Record<string, unknown>), responseSite());
    } catch (error) {
      throw new OmniRelayError({
        status: "internal",
        code: ErrorCodes.grpc.responseInvalid,
        message: `The remote answered something that is not the procedure's response: ${(error as Error).message}`,
        cause: error,
      });
    }
    return { message: answer, ...(headers ? { headers } : {}) };
  }

  /**
   * Opens a worker session (docs/protocol.md, "Worker sessions") on the `Session` rpc, with this outbound's metadata.
   * `ResourceLeaseWorker` uses it through `ResourceLeaseClient`.
   */
  openSession(options: SessionChannelOptions): SessionChannel {
    const metadata = new Metadata();
    for (const [key, value] of this.staticMetadata) metadata.set(key, value);
    for (const [rawKey, value] of Object.entries(options.headers ?? {})) {
      const key = rawKey.toLowerCase();
      if (isLegalMetadataKey(key) && isLegalHeaderValue(value)) metadata.set(key, value);
    }
    metadata.set("rpc-namespace", printable(options.namespace));
    if (options.caller) metadata.set("rpc-caller", printable(options.caller));
    return openGrpcSession(this.client, metadata, options);
  }

  /** Closes the channel; later calls fail with `omnirelay.outbound.closed`. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.client.close();
  }

  /** Same as `close()`, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  private metadataFor(meta: RequestMeta, namespace: string): Metadata {
    const metadata = new Metadata();
    for (const [key, value] of this.staticMetadata) metadata.set(key, value);
    for (const key of forwarded) {
      const value = meta.headers[key];
      if (isLegalHeaderValue(value)) metadata.set(key, value);
    }
    metadata.set("rpc-namespace", printable(namespace));
    if (meta.caller) metadata.set("rpc-caller", printable(meta.caller));
    if (meta.shardKey) metadata.set("rpc-shard-key", printable(meta.shardKey));
    return metadata;
  }
}

function printable(value: string): string {
  return value.replace(/[^ -~]/g, "?");
}

function abortError(signal: AbortSignal): OmniRelayError {
  const reason: unknown = signal.reason;
  if (isOmniRelayError(reason)) return reason;
  if (reason instanceof Error && (reason.name === "TimeoutError" || reason.name === "AbortError")) {
    return OmniRelayError.from(reason);
  }
  return new OmniRelayError({
    status: "cancelled",
    code: ErrorCodes.rpc.cancelled,
    message: "The call was cancelled.",
    ...(reason !== undefined ? { cause: reason } : {}),
  });
}

function responseHeaders(initial: Metadata): Record<string, string> | undefined {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadataToHeaders(initial))) {
    if (isLegalMetadataKey(key)) out[key] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}
