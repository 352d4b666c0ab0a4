import { type ChannelCredentials, type ChannelOptions, credentials } from "@grpc/grpc-js";

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
}

/** Channel credentials for `tls` (plaintext when absent). Internal. */
export function hubChannelCredentials(tls: ReplicationHubClientTlsOptions | undefined): ChannelCredentials {
  if (!tls) return credentials.createInsecure();
  return credentials.createSsl(
    tls.ca ? Buffer.from(tls.ca) : null,
    tls.key ? Buffer.from(tls.key) : null,
    tls.cert ? Buffer.from(tls.cert) : null,
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
