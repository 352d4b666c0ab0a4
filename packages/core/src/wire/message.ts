import { ErrorCodes } from "../errors/codes.js";
import { getPropertyIgnoreCase } from "./case-insensitive.js";
import { child, fail, type Site } from "./site.js";
import { encodeTime } from "./time.js";
import * as v from "./values.js";

/**
 * The form a message is written in. `json`: the HTTP wire and every log (bytes base64). `proto`: the shape of the
 * ts-proto message of the same name (bytes raw); times are ISO-8601 strings in both.
 */
export type WireForm = "json" | "proto";

/** How one field of a message is read and written. Internal to the wire layer. */
export interface Field<T> {
  read(value: unknown, site: Site): T | undefined;
  write(value: T, form: WireForm): unknown;
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
}

type Fields<T> = { readonly [K in keyof T]-?: Field<NonNullable<T[K]>> };

/** Codes of a message as a whole: `required` when it is absent, `code` when it is not an object. */
export interface MessageRules {
  readonly required?: string;
  readonly code?: string;
}

/** Describes a message by its fields. */
export function message<T extends object>(fields: Fields<T>, rules: MessageRules = {}): WireMessage<T> {
  const entries = Object.entries(fields) as Array<[string, Field<unknown>]>;
  /** Absent (undefined or null) reads as undefined: as a field, the message is optional unless wrapped. */
  const readField = (value: unknown, site: Site): T | undefined => {
    if (v.absent(value)) return undefined;
    const source = v.object(value, site, {
      code: rules.code ?? rules.required ?? ErrorCodes.resourceLease.argumentInvalid,
    })!;
    const out: Record<string, unknown> = {};
    for (const [name, field] of entries) {
      const got = field.read(getPropertyIgnoreCase(source, name), child(site, name));
      if (got !== undefined) out[name] = got;
    }
    return out as T;
  };
  const read = (value: unknown, site: Site): T =>
    readField(value, site) ??
    (v.object(value, site, { required: rules.required ?? ErrorCodes.resourceLease.argumentInvalid }) as never);
  const write = (value: T, form: WireForm = "json"): Record<string, unknown> => {
    const out: Record<string, unknown> = {};
    for (const [name, field] of entries) {
      const got = (value as Record<string, unknown>)[name];
      if (got !== undefined) out[name] = field.write(got, form);
    }
    return out;
  };
  return { read, write, field: { read: readField, write } };
}

/** A message as a required field: absent is an error with `code`. */
export function required<T>(m: WireMessage<T>, code: string): Field<T> {
  return {
    read: (value, site) => {
      if (v.absent(value)) v.object(value, site, { required: code });
      return m.read(value, site);
    },
    write: (value, form) => m.write(value, form),
  };
}

/** A field that reads as `fallback` when absent. */
export function orElse<T>(field: Field<T>, fallback: T): Field<T> {
  return { read: (value, site) => field.read(value, site) ?? fallback, write: field.write };
}

const same = <T>(value: T): T => value;

/** Field builders over the one family of value readers. */
export const f = {
  text: (rules: v.TextRules & { emptyIsAbsent?: boolean }): Field<string> => ({
    read: (value, site) => {
      const got = v.text(value, site, rules);
      return rules.emptyIsAbsent && got === "" ? undefined : got;
    },
    write: same,
  }),
  int: (rules: v.IntegerRules): Field<number> => ({
    read: (value, site) => v.integer(value, site, rules),
    write: same,
  }),
  time: (rules: { required?: string; code?: string } = {}): Field<number> => ({
    read: (value, site) => v.time(value, site, rules),
    write: (value) => encodeTime(value),
  }),
  bytes: (code?: string): Field<Uint8Array> => ({
    read: (value, site) => v.bytes(value, site, code),
    write: (value, form) => (form === "proto" ? value : v.encodeBytes(value)),
  }),
  bool: (code?: string): Field<boolean> => ({ read: (value, site) => v.bool(value, site, code), write: same }),
  /** A string map; an empty one is read as absent except from a log (protobuf cannot tell the two apart). */
  map: (code?: string): Field<Readonly<Record<string, string>>> => ({
    read: (value, site) => {
      const got = v.stringMap(value, site, code);
      return got && site.mode !== "log" && Object.keys(got).length === 0 ? undefined : got;
    },
    write: (value) => ({ ...value }),
  }),
  /** One of a fixed set of strings. */
  oneOf: <S extends string>(values: readonly S[], rules: { required?: string; code?: string } = {}): Field<S> => ({
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
  }),
  list: <T>(item: Field<T>, rules: { max?: number; code?: string } = {}): Field<readonly T[]> => ({
    read: (value, site) => v.list(value, site, rules)?.map((entry, i) => item.read(entry, child(site, i)) as T),
    write: (value, form) => value.map((entry) => item.write(entry, form)),
  }),
};
