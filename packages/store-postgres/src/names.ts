import { OmniRelayError } from "@omnirelay/core";
import { textOption } from "@omnirelay/core/wire";

/** PostgreSQL keeps the first 63 bytes of an identifier (NAMEDATALEN - 1) and silently drops the rest. */
const MAX_IDENTIFIER_BYTES = 63;

/**
 * Reads a schema or table name option: any text PostgreSQL can hold as an identifier, up to 63 bytes (a longer one
 * would be cut short, naming another table), and no NUL.
 * @throws OmniRelayError `resourcelease.options.invalid` naming the option.
 */
export function identifierOption(option: string, value: unknown, fallback: string): string {
  const name = textOption(option, value, { max: MAX_IDENTIFIER_BYTES, fallback });
  if (Buffer.byteLength(name, "utf8") > MAX_IDENTIFIER_BYTES) {
    throw OmniRelayError.invalidOption(option, `${option} must be at most ${MAX_IDENTIFIER_BYTES} bytes of UTF-8.`);
  }
  if (name.includes("\u0000")) throw OmniRelayError.invalidOption(option, `${option} must not hold a NUL character.`);
  return name;
}

/** A quoted identifier: double quotes around it, each double quote inside doubled, so any name is one identifier. */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}
