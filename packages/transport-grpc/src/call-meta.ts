import type { Metadata, ServerUnaryCall } from "@grpc/grpc-js";
import type { TransportSecurity } from "@omnirelay/core";

// Helpers shared by the inbound and the outbound: metadata ⇄ headers, peer identity.

// Headers that HTTP/2 or gRPC itself owns; never copied into custom metadata.
const reserved = new Set([
  "content-type",
  "content-length",
  "te",
  "host",
  "connection",
  "keep-alive",
  "proxy-connection",
  "transfer-encoding",
  "upgrade",
  "user-agent",
  "authority",
]);

/** True for a key that may be sent as custom text metadata. */
export function isLegalMetadataKey(key: string): boolean {
  return /^[0-9a-z_.-]+$/.test(key) && !key.endsWith("-bin") && !key.startsWith("grpc-") && !reserved.has(key);
}

/** True for a value grpc-js accepts in text metadata (printable ASCII). */
export function isLegalHeaderValue(value: unknown): value is string {
  return typeof value === "string" && /^[ -~]*$/.test(value);
}

/** Text metadata of a call as lower-cased headers; repeated keys are joined with `, `; binary entries are skipped. */
export function metadataToHeaders(metadata: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const key of Object.keys(metadata.getMap())) {
    if (key.endsWith("-bin")) continue;
    const values = metadata.get(key).filter((v): v is string => typeof v === "string");
    if (values.length > 0) out[key.toLowerCase()] = values.join(", ");
  }
  return out;
}

/** The IP address in a grpc-js peer string (`127.0.0.1:50123`, `::1:50123`); `undefined` when unknown. */
export function peerAddress(peer: string): string | undefined {
  if (!peer || peer === "unknown") return undefined;
  const bracketed = /^\[(.+)\]:\d+$/.exec(peer);
  if (bracketed) return bracketed[1];
  const withPort = /^(.+):\d+$/.exec(peer);
  return withPort ? withPort[1] : peer;
}

/**
 * How the connection of a call was authenticated. grpc-js exposes the peer certificate only when the TLS handshake
 * verified it against the server's CA, so a subject here is always a verified one: its CN, else the full subject.
 */
export function transportSecurity(call: ServerUnaryCall<unknown, unknown>, tls: boolean): TransportSecurity {
  const remoteAddress = peerAddress(call.getPeer());
  const address = remoteAddress ? { remoteAddress } : {};
  const cert = tls ? call.getAuthContext?.()?.sslPeerCertificate : undefined;
  const subject = cert?.subject;
  if (!subject) return { clientCertificateVerified: false, ...address };
  const cn = Array.isArray(subject.CN) ? subject.CN[0] : subject.CN;
  const full = Object.entries(subject)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.join("+") : v}`)
    .join(",");
  const name = cn || full;
  return {
    clientCertificateVerified: Boolean(name),
    ...(name ? { clientCertificateSubject: name } : {}),
    ...address,
  };
}
