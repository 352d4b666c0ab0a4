/**
 * Reads an own property of a JSON object, matching the name case-insensitively as the wire contract requires
 * ("camelCase out, case-insensitive in"). An exact match wins over a case-insensitive one; inherited properties
 * (including `__proto__`) are never returned.
 *
 * @param source - a parsed JSON object.
 * @param name - the property name, normally camelCase.
 * @returns the value, or `undefined` when no property matches.
 */
export function getPropertyIgnoreCase(source: object, name: string): unknown {
  const record = source as Record<string, unknown>;
  if (Object.hasOwn(record, name)) return record[name];
  // Absent optional fields are the common case: no Object.keys array per lookup, and lengths compared first.
  const length = name.length;
  let wanted: string | undefined;
  for (const key in record) {
    if (key.length !== length || !Object.hasOwn(record, key)) continue;
    wanted ??= name.toLowerCase();
    if (key.toLowerCase() === wanted) return record[key];
  }
  return undefined;
}
