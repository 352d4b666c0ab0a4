import { OmniRelayError } from "../errors/omnirelay-error.js";
import { numberOption } from "../wire/options.js";

/** Returns `value` when it is `undefined` or a finite number > 0; throws otherwise. Internal. */
export function optionalPositive(option: string, value: unknown): number | undefined {
  return value === undefined ? undefined : numberOption(option, value, { min: 0, aboveMin: true });
}

/** Returns `value` when it is `undefined` or an array of non-blank strings (trimmed); throws otherwise. Internal. */
export function optionalStrings(option: string, value: unknown): string[] | undefined {
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v.trim().length === 0)) {
    throw OmniRelayError.invalidOption(option, `Option '${option}' must be an array of non-blank strings.`);
  }
  return (value as string[]).map((v) => v.trim());
}

/** Throws unless `value` is `undefined` or a function. Internal. */
export function optionalFunction<T>(option: string, value: T | undefined): T | undefined {
  if (value !== undefined && typeof value !== "function") {
    throw OmniRelayError.invalidOption(option, `Option '${option}' must be a function.`);
  }
  return value;
}
