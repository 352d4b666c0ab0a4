/**
 * The tablelease adoption kit: {@link runCodemod} rewrites TypeScript callers of the deprecated `tablelease::*`
 * contracts to `resourcelease::*`, {@link runLint} reports what is left. The field map is in `map.ts` and in
 * docs/guides/migrating-from-tablelease.md.
 * @packageDocumentation
 */
export { type CodemodOptions, type FileChanges, migrateSourceFile, runCodemod } from "./codemod.js";
export { formatFinding, type LintFinding, type LintRule, lintSourceFile, runLint } from "./lint.js";
export {
  ERROR_CODE_RENAMES,
  ERROR_CODES_WITHOUT_EQUIVALENT,
  type IdentityMapping,
  TYPE_RENAMES,
  TYPES_WITHOUT_EQUIVALENT,
} from "./map.js";
