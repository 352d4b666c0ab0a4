/** Tests a procedure name against a compiled pattern. */
export type ProcedureMatcher = (procedure: string) => boolean;

/**
 * Compiles a case-insensitive procedure pattern: `*` matches any run of characters (including `::`), so
 * `resourcelease::*` is every verb of the `resourcelease` namespace, `*::lease` is `lease` in every namespace and
 * `*` alone is everything. A pattern without `*` must equal the name (ignoring case and surrounding spaces).
 */
export function compileProcedureGlob(pattern: string): ProcedureMatcher {
  const parts = pattern.trim().toLowerCase().split("*");
  if (parts.length === 1) {
    const exact = parts[0] ?? "";
    return (procedure) => procedure.trim().toLowerCase() === exact;
  }
  const head = parts[0] ?? "";
  const tail = parts[parts.length - 1] ?? "";
  const middle = parts.slice(1, -1).filter((p) => p.length > 0);
  const minLength = head.length + tail.length + middle.reduce((n, p) => n + p.length, 0);
  return (procedure) => {
    const name = procedure.trim().toLowerCase();
    if (name.length < minLength || !name.startsWith(head) || !name.endsWith(tail)) return false;
    let at = head.length;
    const end = name.length - tail.length;
    for (const part of middle) {
      const found = name.indexOf(part, at);
      if (found < 0 || found + part.length > end) return false;
      at = found + part.length;
    }
    return true;
  };
}

/** Compiles several patterns into one matcher that accepts a name when any pattern matches it. */
export function compileProcedureGlobs(patterns: readonly string[]): ProcedureMatcher {
  const matchers = patterns.map(compileProcedureGlob);
  return (procedure) => matchers.some((match) => match(procedure));
}

/** Whether `procedure` matches the case-insensitive `pattern` (see {@link compileProcedureGlob}). */
export function matchesProcedureGlob(pattern: string, procedure: string): boolean {
  return compileProcedureGlob(pattern)(procedure);
}

/** A procedure name split at its last `::`: `resourcelease.billing::Lease` → `{ namespace, verb: 'lease' }`. */
export interface ProcedureParts {
  /** The part before `::`, as sent. */
  readonly namespace: string;
  /** The part after `::`, lower-cased. */
  readonly verb: string;
}

/** Splits `{namespace}::{verb}`; `undefined` when the name has no `::` or either side is blank. */
export function splitProcedure(procedure: string): ProcedureParts | undefined {
  const name = procedure.trim();
  const at = name.lastIndexOf("::");
  if (at <= 0) return undefined;
  const namespace = name.slice(0, at).trim();
  const verb = name
    .slice(at + 2)
    .trim()
    .toLowerCase();
  if (namespace.length === 0 || verb.length === 0) return undefined;
  return { namespace, verb };
}
