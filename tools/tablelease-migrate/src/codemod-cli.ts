#!/usr/bin/env node
/**
 * tablelease-codemod [--dry-run] [--identity qualified|split] <folder or file>...
 * Rewrites the TypeScript files in place (or, with --dry-run, only says what it would change).
 */
import { relative } from "node:path";
import { parseArgs } from "node:util";
import { runCodemod } from "./codemod.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { "dry-run": { type: "boolean", default: false }, identity: { type: "string", default: "qualified" } },
});
const identity = values.identity;
if ((identity !== "qualified" && identity !== "split") || positionals.length === 0) {
  console.error("usage: tablelease-codemod [--dry-run] [--identity qualified|split] <folder or file>...");
  process.exit(2);
}
const changed = await runCodemod(positionals, { identity, dryRun: values["dry-run"] });
const verb = values["dry-run"] ? "would rewrite" : "rewrote";
for (const file of changed) console.log(`${verb} ${relative(process.cwd(), file.path)} (${file.changes} changes)`);
console.log(`${changed.length} file(s) ${values["dry-run"] ? "to change" : "changed"}`);
