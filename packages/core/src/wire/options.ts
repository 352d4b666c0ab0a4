import { ErrorCodes } from "../errors/codes.js";
import { optionSite } from "./site.js";
import { finite, integer, text } from "./values.js";

const invalid = ErrorCodes.resourceLease.optionsInvalid;

// Options are read by the same value readers as every message field, at an option site: a bad value is
// `OmniRelayError.invalidOption(name, …)` (code `resourcelease.options.invalid`, metadata `option`).

/** Rules of {@link integerOption}. */
export interface IntegerOptionRules {
  /** Smallest value allowed. */
  readonly min: number;
  /** Largest value allowed. @defaultValue `Number.MAX_SAFE_INTEGER` */
  readonly max?: number;
  /** Used when the option is `undefined` or `null`; without it the option is required. */
  readonly fallback?: number;
}

/**
 * Reads an integer option: a safe integer within `[min, max]`, or `fallback` when absent.
 * @throws OmniRelayError `resourcelease.options.invalid` naming the option.
 * @example `const capacity = integerOption("capacity", options.capacity, { min: 1, fallback: 512 });`
 */
export function integerOption(name: string, value: unknown, rules: IntegerOptionRules): number {
  if ((value === undefined || value === null) && rules.fallback !== undefined) return rules.fallback;
  return integer(value, optionSite(name), { min: rules.min, max: rules.max, required: invalid }) as number;
}

/** Rules of {@link numberOption}. */
export interface NumberOptionRules {
  /** Smallest value allowed (see `aboveMin`). */
  readonly min: number;
  /** Largest value allowed. @defaultValue no bound */
  readonly max?: number;
  /** `min` itself is refused: the value must be greater than it. */
  readonly aboveMin?: boolean;
  /** Used when the option is `undefined` or `null`; without it the option is required. */
  readonly fallback?: number;
}

/**
 * Reads a number option (a rate, a fraction, a duration that may be fractional): finite and within the bounds.
 * @throws OmniRelayError `resourcelease.options.invalid` naming the option.
 */
export function numberOption(name: string, value: unknown, rules: NumberOptionRules): number {
  if ((value === undefined || value === null) && rules.fallback !== undefined) return rules.fallback;
  const { min, max, aboveMin } = rules;
  return finite(value, optionSite(name), { min, max, aboveMin, required: invalid }) as number;
}

/** Rules of {@link textOption}. */
export interface TextOptionRules {
  /** Most characters. @defaultValue 200 */
  readonly max?: number;
  /** Used when the option is `undefined` or `null`; without it the option is required. */
  readonly fallback?: string;
}

/**
 * Reads a name-like text option: a non-blank, well-formed string of at most `max` characters, returned trimmed.
 * @throws OmniRelayError `resourcelease.options.invalid` naming the option.
 */
export function textOption(name: string, value: unknown, rules: TextOptionRules = {}): string {
  if ((value === undefined || value === null) && rules.fallback !== undefined) return rules.fallback;
  const read = text(value, optionSite(name), { max: rules.max ?? 200, required: invalid });
  return (read as string).trim();
}
