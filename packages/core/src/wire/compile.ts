// Each message's reader and writer, compiled once from its description into straight-line code. A loop over the
// fields would store every property by a computed name, which V8 cannot specialise; every commit writes each event
// once and every lease writes each grant once, so these two functions are the wire layer's hot path. The generated
// code refers only to field names of our own descriptions (checked to be plain identifiers) and to the field
// functions passed in as arguments: nothing a caller sends becomes code.

import type { Site } from "./site.js";

/** Writes a field's domain value (`undefined`: written as it is). */
export type FieldWriter = ((value: never, form: never) => unknown) | undefined;
/** Reads a field's raw value at a site. */
export type FieldReader = (value: unknown, site: Site) => unknown;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function checkNames(names: readonly string[]): void {
  for (const name of names) {
    if (!IDENTIFIER.test(name)) throw new Error(`A message field must be named by an identifier, not ${name}.`);
  }
}

/**
 * `(value, form) => object`: each field present in `value` written by its writer, absent ones left out, in the
 * description's order.
 */
export function compileWriter(
  names: readonly string[],
  writers: readonly FieldWriter[],
): (value: object, form: unknown) => Record<string, unknown> {
  checkNames(names);
  const lines = names.map((name, i) =>
    writers[i] === undefined
      ? `x = value.${name}; if (x !== undefined) out.${name} = x;`
      : `x = value.${name}; if (x !== undefined) out.${name} = w${i}(x, form);`,
  );
  const params = names.map((_, i) => `w${i}`);
  const source = `"use strict"; return function write(value, form) { const out = {}; let x; ${lines.join(" ")} return out; };`;
  return new Function(...params, source)(...writers);
}

/**
 * `(values, site, child) => object`: `values[i]` (the raw value of field `i`, already matched by name) read by field
 * `i`'s reader at `child(site, name)`; fields that read as `undefined` are left out.
 */
export function compileReader(
  names: readonly string[],
  readers: readonly FieldReader[],
): (values: readonly unknown[], site: Site, child: (site: Site, key: string) => Site) => Record<string, unknown> {
  checkNames(names);
  const lines = names.map(
    (name, i) => `x = r${i}(values[${i}], child(site, "${name}")); if (x !== undefined) out.${name} = x;`,
  );
  const params = names.map((_, i) => `r${i}`);
  const source = `"use strict"; return function read(values, site, child) { const out = {}; let x; ${lines.join(" ")} return out; };`;
  return new Function(...params, source)(...readers);
}
