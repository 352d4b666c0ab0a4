import { getPropertyIgnoreCase } from "@omnirelay/core";

/** A JSON object as parsed from a request or response body. */
export type Json = Record<string, unknown>;

/** Reports a value that cannot be carried: `field` is its path (`payloads[2].body`), `code` the error code to use. */
export type FailFn = (field: string, message: string, code: string) => never;

/** True for `undefined` and `null`: the JSON wire omits nulls, so both mean "absent". */
export function absent(value: unknown): value is undefined | null {
  return value === undefined || value === null;
}

const base64Pattern = /^[A-Za-z0-9+/]*={0,2}$/;
const decimalPattern = /^-?\d+$/;

/**
 * Reads JSON DTO values with the leniency of core's HTTP decoder (names match case-insensitively, nulls are absent,
 * token and item integers may be decimal strings, times may be ms numbers) and reports values that no proto field
 * can carry through `fail`. Range checks are left to the procedure, so both transports answer the same error.
 */
export class JsonReader {
  constructor(readonly fail: FailFn) {}

  /** Reads a property, ignoring case. */
  get(source: Json, name: string): unknown {
    return getPropertyIgnoreCase(source, name);
  }

  /** An object, or `undefined` when absent. */
  object(value: unknown, field: string, code: string): Json | undefined {
    if (absent(value)) return undefined;
    if (typeof value !== "object" || Array.isArray(value)) this.fail(field, `${field} must be an object.`, code);
    return value as Json;
  }

  /** A list, or `undefined` when absent. */
  list(value: unknown, field: string, code: string): unknown[] | undefined {
    if (absent(value)) return undefined;
    if (!Array.isArray(value)) this.fail(field, `${field} must be a list.`, code);
    return value;
  }

  /** A string, or `undefined` when absent. */
  str(value: unknown, field: string, code: string): string | undefined {
    if (absent(value)) return undefined;
    if (typeof value !== "string") this.fail(field, `${field} must be a string.`, code);
    return value;
  }

  /** A boolean, or `undefined` when absent. */
  bool(value: unknown, field: string, code: string): boolean | undefined {
    if (absent(value)) return undefined;
    if (typeof value !== "boolean") this.fail(field, `${field} must be true or false.`, code);
    return value;
  }

  /**
   * A safe integer, or `undefined` when absent. With `decimalStrings`, `"42"` reads as 42 (core accepts that for
   * token and item fields, not for request options such as `waitMs`).
   */
  int(value: unknown, field: string, code: string, decimalStrings = false): number | undefined {
    if (absent(value)) return undefined;
    const n = decimalStrings && typeof value === "string" && decimalPattern.test(value.trim()) ? Number(value) : value;
    if (typeof n !== "number" || !Number.isSafeInteger(n)) this.fail(field, `${field} must be an integer.`, code);
    return n;
  }

  /** A list of safe integers, or `undefined` when absent. */
  intList(value: unknown, field: string, code: string): number[] | undefined {
    return this.list(value, field, code)?.map((v, i) => {
      const n = this.int(v, `${field}[${i}]`, code);
      if (n === undefined) this.fail(`${field}[${i}]`, `${field}[${i}] must be an integer.`, code);
      return n;
    });
  }

  /** A list of booleans, or `undefined` when absent. */
  boolList(value: unknown, field: string, code: string): boolean[] | undefined {
    return this.list(value, field, code)?.map((v, i) => {
      const b = this.bool(v, `${field}[${i}]`, code);
      if (b === undefined) this.fail(`${field}[${i}]`, `${field}[${i}] must be true or false.`, code);
      return b;
    });
  }

  /** A time: ISO-8601 strings are carried as they are; a ms-since-epoch number becomes its ISO-8601 form. */
  time(value: unknown, field: string, code: string): string | undefined {
    if (absent(value)) return undefined;
    if (typeof value === "string") return value;
    if (typeof value === "number" && Number.isFinite(new Date(Math.trunc(value)).getTime())) {
      return new Date(Math.trunc(value)).toISOString();
    }
    return this.fail(field, `${field} must be an ISO-8601 timestamp.`, code);
  }

  /** Base64 text → bytes (the JSON form of proto `bytes`). */
  bytes(value: unknown, field: string, code: string): Buffer | undefined {
    if (absent(value)) return undefined;
    if (typeof value !== "string" || !base64Pattern.test(value) || value.length % 4 === 1) {
      this.fail(field, `${field} must be a base64 string.`, code);
    }
    return Buffer.from(value, "base64");
  }

  /** An object of strings; absent reads as `{}` (proto maps have no presence). */
  stringMap(value: unknown, field: string, code: string): Record<string, string> {
    const source = this.object(value, field, code);
    const out: Record<string, string> = {};
    if (!source) return out;
    for (const [key, v] of Object.entries(source)) {
      if (typeof v !== "string") this.fail(`${field}.${key}`, `${field}.${key} must be a string.`, code);
      out[key] = v;
    }
    return out;
  }
}

/** Copies a proto map into a JSON object, omitting it when empty (an empty proto map is indistinguishable from none). */
export function mapToJson(map: Readonly<Record<string, string>> | undefined): Record<string, string> | undefined {
  if (!map) return undefined;
  const keys = Object.keys(map);
  if (keys.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const key of keys) out[key] = map[key]!;
  return out;
}

/** Sets `target[name] = value` unless the value is `undefined` (the JSON wire omits absent fields). */
export function put(target: Json, name: string, value: unknown): void {
  if (value !== undefined) target[name] = value;
}
