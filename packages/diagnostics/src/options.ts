import { OmniRelayError } from "@omnirelay/core";

/** How {@link integerOption} resolves and checks one option. */
export interface IntegerOptionRule {
  /** The value given, if any. */
  readonly value: number | undefined;
  /** The value used when none was given. */
  readonly fallback: number;
  /** Smallest accepted value. */
  readonly min: number;
}

/** Validates an integer option against a minimum. */
export function integerOption(option: string, rule: IntegerOptionRule): number {
  const resolved = rule.value ?? rule.fallback;
  if (!Number.isSafeInteger(resolved) || resolved < rule.min) {
    throw OmniRelayError.invalidOption(option, `Option '${option}' must be an integer >= ${rule.min}.`);
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
