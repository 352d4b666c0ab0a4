import { ErrorCodes } from "../errors/codes.js";
import { compileReader, compileWriter, type FieldWriter } from "./compile.js";
import { child, fail, type Site } from "./site.js";
import { encodeTime } from "./time.js";
import * as v from "./values.js";

/**
 * The form a message is written in. `json`: the HTTP wire and every log (bytes base64). `proto`: the shape of the
 * ts-proto message of the same name (bytes raw); times are ISO-8601 strings in both.
 */
export type WireForm = "json" | "proto";

/** A JSON Schema (draft-07) node. */
export type JsonSchema = Record<string, unknown>;

/** How one field of a message is read and written, and what its JSON looks like. Internal to the wire layer. */
export interface Field<T> {
  read(value: unknown, site: Site): T | undefined;
  write(value: T, form: WireForm): unknown;
  /** The field's JSON Schema; named messages it holds are added to `definitions`. */
  schema(definitions: Record<string, JsonSchema>): JsonSchema;
  /** Always present in what the writer produces (required, or read with a fallback). */
  readonly always?: boolean;
}

/**
 * One message of the protocol, described once: its reader takes parsed JSON (property names matched
 * case-insensitively), a protobuf message or an in-process object, checks every field at a site and returns the
 * domain value; its writer gives the JSON (camelCase, absent fields omitted) or protobuf-shaped object.
 */
export interface WireMessage<T> {
  read(value: unknown, site: Site): T;
  write(value: T, form?: WireForm): Record<string, unknown>;
  /** The message as a field of another one. */
  readonly field: Field<T>;
  /** The JSON Schema of the message's JSON form; named messages it holds are added to `definitions`. */
  schema(definitions: Record<string, JsonSchema>): JsonSchema;
}

/** The writer of a field written as it is. */
const same = <T>(value: T): T => value;

type Fields<T> = { readonly [K in keyof T]-?: Field<NonNullable<T[K]>> };

/**
 * Codes of a message as a whole: `required` when it is absent, `code` when it is not an object. A `name` makes its
 * JSON Schema a shared definition (`#/definitions/<name>`).
 */
export interface MessageRules {
  readonly required?: string;
  readonly code?: string;
  readonly name?: string;
}

/** Describes a message by its fields. */
export function message<T extends object>(fields: Fields<T>, rules: MessageRules = {}): WireMessage<T> {
  const entries = Object.entries(fields) as Array<[string, Field<unknown>]>;
  // Names matched case-insensitively in one pass over the source's own keys (most fields of most messages are absent:
  // looking each one up would scan the keys once per absent field). An exact match wins over a case-insensitive one,
  // and among case-insensitive ones the first; keys that name no field are ignored.
  const exactIndex = new Map(entries.map(([name], i) => [name, i]));
  const foldedIndex = new Map(entries.map(([name], i) => [name.toLowerCase(), i]));
  const collect = (source: Record<string, unknown>): unknown[] => {
    const values: unknown[] = new Array(entries.length);
    for (const key in source) {
      if (!Object.hasOwn(source, key)) continue;
      const i = exactIndex.get(key);
      if (i !== undefined) {
        values[i] = source[key]; // an exact key wins, whether a case-insensitive one came first or not
        continue;
      }
      // A case-insensitive key fills only a field nothing has filled yet (an exact key later still overwrites it).
      const j = foldedIndex.get(key.toLowerCase());
      if (j !== undefined && !(j in values)) values[j] = source[key];
    }
    return values;
  };
  /** Absent (undefined or null) reads as undefined: as a field, the message is optional unless wrapped. */
  const readField = (value: unknown, site: Site): T | undefined => {
    if (v.absent(value)) return undefined;
    const source = v.object(value, site, {
      code: rules.code ?? rules.required ?? ErrorCodes.resourceLease.argumentInvalid,
    })!;
    return readFields(collect(source), site, child) as T;
  };
  const read = (value: unknown, site: Site): T =>
    readField(value, site) ??
    (v.object(value, site, { required: rules.required ?? ErrorCodes.resourceLease.argumentInvalid }) as never);
  const names = entries.map(([name]) => name);
  const readFields = compileReader(
    names,
    entries.map(([, field]) => field.read),
  );
  const writeFields = compileWriter(
    names,
    entries.map(([, field]) => (field.write === same ? undefined : (field.write as FieldWriter))),
  );
  const write = (value: T, form: WireForm = "json"): Record<string, unknown> => writeFields(value, form);
  const body = (definitions: Record<string, JsonSchema>): JsonSchema => {
    const properties: Record<string, JsonSchema> = {};
    const requiredNames: string[] = [];
    for (const [name, field] of entries) {
      properties[name] = field.schema(definitions);
      if (field.always) requiredNames.push(name);
    }
    return {
      type: "object",
      ...(requiredNames.length > 0 ? { required: requiredNames } : {}),
      additionalProperties: false,
      properties,
    };
  };
  const schema = (definitions: Record<string, JsonSchema>): JsonSchema => {
    if (!rules.name) return body(definitions);
    if (!(rules.name in definitions)) {
      definitions[rules.name] = {}; // placeholder first: a message may hold itself
      definitions[rules.name] = body(definitions);
    }
    return { $ref: `#/definitions/${rules.name}` };
  };
  return { read, write, schema, field: { read: readField, write, schema } };
}

/** A message as a required field: absent is an error with `code`. */
export function required<T>(m: WireMessage<T>, code: string): Field<T> {
  return {
    read: (value, site) => {
      if (v.absent(value)) v.object(value, site, { required: code });
      return m.read(value, site);
    },
    write: (value, form) => m.write(value, form),
    schema: (definitions) => m.schema(definitions),
    always: true,
  };
}

/** A field that reads as `fallback` when absent. */
export function orElse<T>(field: Field<T>, fallback: T): Field<T> {
  return {
    read: (value, site) => field.read(value, site) ?? fallback,
    write: field.write,
    schema: field.schema,
    always: true,
  };
}

/** A field's documentation, carried into its JSON Schema. */
interface Doc {
  readonly doc?: string;
}

const described = (schema: JsonSchema, doc: string | undefined): JsonSchema =>
  doc ? { ...schema, description: doc } : schema;

/** The ISO-8601 times a writer produces (and the schema accepts). */
const ISO_PATTERN = "^(\\d{4}|[+-]\\d{6})-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?(Z|[+-]\\d{2}:\\d{2})$";

/** Field builders over the one family of value readers. */
export const f = {
  text: (rules: v.TextRules & Doc & { emptyIsAbsent?: boolean }): Field<string> => ({
    read: (value, site) => {
      const got = v.text(value, site, rules);
      return rules.emptyIsAbsent && got === "" ? undefined : got;
    },
    write: same,
    schema: () => described({ type: "string", ...(rules.required ? { minLength: 1 } : {}) }, rules.doc),
    always: Boolean(rules.required),
  }),
  int: (rules: v.IntegerRules & Doc): Field<number> => ({
    read: (value, site) => v.integer(value, site, rules),
    write: same,
    schema: () =>
      described(
        { type: "integer", minimum: rules.min, ...(rules.everywhere ? { maximum: rules.max } : {}) },
        rules.doc,
      ),
    always: Boolean(rules.required),
  }),
  time: (rules: { required?: string; code?: string } & Doc = {}): Field<number> => ({
    read: (value, site) => v.time(value, site, rules),
    write: encodeTime,
    schema: () => described({ type: "string", format: "date-time", pattern: ISO_PATTERN }, rules.doc),
    always: Boolean(rules.required),
  }),
  bytes: (code?: string): Field<Uint8Array> => ({
    read: (value, site) => v.bytes(value, site, code),
    write: (value, form) => (form === "proto" ? value : v.encodeBytes(value)),
    schema: () => ({ type: "string", pattern: "^[A-Za-z0-9+/]*={0,2}$", description: "Bytes, base64." }),
  }),
  bool: (code?: string): Field<boolean> => ({
    read: (value, site) => v.bool(value, site, code),
    write: same,
    schema: () => ({ type: "boolean" }),
  }),
  /** A string map; an empty one is read as absent except from a log (protobuf cannot tell the two apart). */
  map: (code?: string, doc?: string): Field<Readonly<Record<string, string>>> => ({
    read: (value, site) => {
      const got = v.stringMap(value, site, code);
      return got && site.mode !== "log" && Object.keys(got).length === 0 ? undefined : got;
    },
    write: same, // read into a fresh object, never changed after
    schema: () => described({ type: "object", additionalProperties: { type: "string" } }, doc),
  }),
  /** One of a fixed set of strings. */
  oneOf: <S extends string>(
    values: readonly S[],
    rules: { required?: string; code?: string } & Doc = {},
  ): Field<S> => ({
    read: (value, site) => {
      const got = v.text(value, site, { max: 64, ...rules });
      if (got !== undefined && !(values as readonly string[]).includes(got)) {
        fail(
          site,
          rules.code ?? ErrorCodes.resourceLease.argumentInvalid,
          `${site.path} must be one of ${values.join(", ")}.`,
        );
      }
      return got as S | undefined;
    },
    write: same,
    schema: () => described({ type: "string", enum: [...values] }, rules.doc),
    always: Boolean(rules.required),
  }),
  list: <T>(item: Field<T>, rules: { max?: number; code?: string } = {}): Field<readonly T[]> => ({
    read: (value, site) => v.list(value, site, rules)?.map((entry, i) => item.read(entry, child(site, i)) as T),
    write: (value, form) => value.map((entry) => item.write(entry, form)),
    schema: (definitions) => ({ type: "array", items: item.schema(definitions) }),
  }),
};
