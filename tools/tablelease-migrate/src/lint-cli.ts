#!/usr/bin/env node
/**
 * tablelease-lint <folder or file>...
 * Prints one line per leftover use of the tablelease contracts; exits 1 when there is any, 0 when the code is clean.
 */
import { formatFinding, runLint } from "./lint.js";

const paths = process.argv.slice(2);
if (paths.length === 0 || paths.some((p) => p.startsWith("-"))) {
  console.error("usage: tablelease-lint <folder or file>...");
  process.exit(2);
}
const findings = runLint(paths);
for (const finding of findings) console.log(formatFinding(finding, process.cwd()));
const files = new Set(findings.map((f) => f.path)).size;
console.log(findings.length === 0 ? "no tablelease leftovers" : `${findings.length} finding(s) in ${files} file(s)`);
process.exitCode = findings.length === 0 ? 0 : 1;
