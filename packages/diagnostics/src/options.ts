import { OmniRelayError } from "@omnirelay/core";

/** Validates an integer option against a minimum. */
export function integerOption(option: string, value: number | undefined, fallback: number, min: number): number {
  const resolved = value ?? fallback;
  if (!Number.isSafeInteger(resolved) || resolved < min) {
    throw OmniRelayError.invalidOption(option, `Option '${option}' must be an integer >= ${min}.`);
  }
  return resolved;
}

/** Validates a non-blank name (shard, sink, check). */
export function nameOption(option: string, value: unknown): string {
  if (typeof value !== "string" || value.trim().length === 0 || value.length > 200) {
    throw OmniRelayError.invalidOption(
      option,
      `Option '${option}' must be a non-blank string of at most 200 characters.`,
    );
  }
  return value.trim();
}
