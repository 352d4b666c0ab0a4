import { type ChannelCredentials, type ChannelOptions, credentials, Metadata } from "@grpc/grpc-js";
import { OmniRelayError } from "@omnirelay/core";

/** Client TLS towards a hub. PEM strings or buffers. */
export interface ReplicationHubClientTlsOptions {
  /** CA the hub's certificate must chain to. @defaultValue the system roots */
  readonly ca?: string | Buffer;
  /** Client certificate, for mutual TLS (with `key`). */
  readonly cert?: string | Buffer;
  /** Client private key, for mutual TLS (with `cert`). */
  readonly key?: string | Buffer;
  /** Expected name in the hub's certificate when it differs from the address's host. */
  readonly serverNameOverride?: string;
  /**
   * A JWT sent as `authorization: Bearer <token>` on every call, for a hub configured with `auth.jwt`. A function is
   * called per call, so a rotating token stays fresh. Only over TLS: it lives here so it cannot be sent in plaintext.
   * @defaultValue undefined (no token)
   */
  readonly bearerToken?: string | (() => string | Promise<string>);
}

/** Channel credentials for `tls` (plaintext when absent), with the bearer token when given. Internal. */
export function hubChannelCredentials(tls: ReplicationHubClientTlsOptions | undefined): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  const ssl = credentials.createSsl(
    tls.ca ? Buffer.from(tls.ca) : null,
    tls.key ? Buffer.from(tls.key) : null,
    tls.cert ? Buffer.from(tls.cert) : null,
  );
  const token = tls.bearerToken;
  if (token === undefined) return ssl;
  return credentials.combineChannelCredentials(
    ssl,
    credentials.createFromMetadataGenerator((_params, callback) => {
      Promise.resolve()
        .then(() => (typeof token === "function" ? token() : token))
        .then((value) => {
          if (!isTokenText(value)) throw new Error("The bearer token function returned no usable token.");
          const metadata = new Metadata();
          metadata.set("authorization", `Bearer ${value}`);
          return metadata;
        })
        .then(
          (metadata) => callback(null, metadata),
          (error: unknown) => callback(error instanceof Error ? error : new Error(String(error))),
        );
    }),
  );
}

/** Channel options every hub client uses: its own connection (a blackholed one is not shared), keepalive. Internal. */
export function hubChannelOptions(tls: ReplicationHubClientTlsOptions | undefined): ChannelOptions {
  return {
    "grpc.use_local_subchannel_pool": 1,
    "grpc.keepalive_time_ms": 10_000,
    "grpc.keepalive_timeout_ms": 5_000,
    "grpc.max_send_message_length": 16 * 1024 * 1024,
    "grpc.max_receive_message_length": 16 * 1024 * 1024,
    ...(tls?.serverNameOverride ? { "grpc.ssl_target_name_override": tls.serverNameOverride } : {}),
  };
}

/** A token that can travel in a header: printable ASCII, no spaces. */
function isTokenText(value: unknown): value is string {
  return typeof value === "string" && /^[\x21-\x7e]{1,16384}$/.test(value);
}

/**
 * Validates client TLS options. Internal.
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`: `tls.bearerToken`).
 */
export function checkClientTls(tls: ReplicationHubClientTlsOptions | undefined): void {
  const token = tls?.bearerToken;
  if (token !== undefined && typeof token !== "function" && !isTokenText(token)) {
    throw OmniRelayError.invalidOption(
      "tls.bearerToken",
      "Option 'tls.bearerToken' is a token (printable ASCII, no spaces) or a function.",
    );
  }
}
