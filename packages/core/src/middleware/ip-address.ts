import { isIP } from "node:net";

const mappedIpv4 = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/**
 * Canonical text of an IP address, so the same address always compares equal: lower-case, brackets and zone
 * removed, IPv6 compressed, and an IPv4-mapped IPv6 address (`::ffff:127.0.0.1`) reduced to its IPv4 form.
 * `undefined` when the text is not an IP address.
 */
export function canonicalIpAddress(address: string): string | undefined {
  let text = address.trim().toLowerCase();
  if (text.startsWith("[") && text.endsWith("]")) text = text.slice(1, -1);
  const zone = text.indexOf("%");
  if (zone >= 0) text = text.slice(0, zone);
  const kind = isIP(text);
  if (kind === 4) return text;
  if (kind !== 6) return undefined;
  let host: string;
  try {
    // The WHATWG URL parser prints IPv6 in its canonical compressed form (and mapped IPv4 as two hex groups).
    host = new URL(`http://[${text}]/`).hostname.slice(1, -1);
  } catch {
    return undefined;
  }
  const mapped = mappedIpv4.exec(host);
  if (mapped) {
    const high = Number.parseInt(mapped[1] ?? "0", 16);
    const low = Number.parseInt(mapped[2] ?? "0", 16);
    return `${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`;
  }
  return host;
}
