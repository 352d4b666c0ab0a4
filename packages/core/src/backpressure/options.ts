import { OmniRelayError } from "../errors/omnirelay-error.js";

/** Throws unless `value` is an integer `>= min`. Internal. */
export function requireInteger(option: string, value: unknown, min: number): number {
  if (typeof value !== "number" || !Number.isInteger(value) || value < min) {
    throw OmniRelayError.invalidOption(
      option,
      `Option '${option}' must be an integer >= ${min}, got ${String(value)}.`,
    );
  }
  return value;
}

/** Throws unless `value` is a finite number `>= min` (or `> min` when `exclusive`). Internal. */
export function requireNumber(option: string, value: unknown, min: number, exclusive = false): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < min || (exclusive && value === min)) {
    const bound = exclusive ? `> ${min}` : `>= ${min}`;
    throw OmniRelayError.invalidOption(
      option,
      `Option '${option}' must be a finite number ${bound}, got ${String(value)}.`,
    );
  }
  return value;
}
