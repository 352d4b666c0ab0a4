// `pnpm run typecheck`: every workspace package's files in one TypeScript program.
//
// Each package keeps `tsc --noEmit` as its own `typecheck` script, but twenty of them, one per package, parse
// @types/node, vitest's types, core's declarations and the SDKs' again and again: 153 s of CPU (80 s on two cores)
// against 18 s for one program over the same files. Every package's tsconfig.json only extends
// tsconfig.base.json and names its files (`include`), so one program with the base options and the union of those
// lists checks the same code; a package that sets any other compiler option would not be checked as it is built, and
// stops this script until it is taken out of the union (its `typecheck` script then runs on its own).
//
// Run after the build (the packages import each other's dist/*.d.ts) and `gen` (src/gen is generated).
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
/** Compiler options a package's tsconfig may set that do not change how its files are checked (this runs --noEmit). */
const outputOnly = new Set(["outDir", "rootDir", "noEmit"]);
const configDir = join(root, "node_modules", ".cache", "omnirelay-typecheck");

const include = [];
for (const group of ["packages", "apps", "tools"]) {
  for (const name of readdirSync(join(root, group)).sort()) {
    const dir = join(root, group, name);
    if (!existsSync(join(dir, "tsconfig.json")) || !existsSync(join(dir, "package.json"))) continue;
    const manifest = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    if (!manifest.scripts?.typecheck) continue;
    const tsconfig = JSON.parse(readFileSync(join(dir, "tsconfig.json"), "utf8"));
    const own = Object.keys(tsconfig.compilerOptions ?? {}).filter((option) => !outputOnly.has(option));
    const extra = Object.keys(tsconfig).filter((key) => !["extends", "compilerOptions", "include"].includes(key));
    if (tsconfig.extends !== "../../tsconfig.base.json" || own.length > 0 || extra.length > 0) {
      throw new Error(
        `${group}/${name}/tsconfig.json sets more than tsconfig.base.json and its files (${[...own, ...extra].join(", ") || tsconfig.extends}): ` +
          "one program cannot check it as it is built; leave it out here and run its own typecheck",
      );
    }
    for (const entry of tsconfig.include ?? []) include.push(relative(configDir, join(dir, entry)));
  }
}

mkdirSync(configDir, { recursive: true });
const config = join(configDir, "tsconfig.json");
const base = relative(configDir, join(root, "tsconfig.base.json"));
writeFileSync(config, `${JSON.stringify({ extends: base, compilerOptions: { noEmit: true }, include }, null, 2)}\n`);
try {
  execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", config], {
    cwd: root,
    stdio: "inherit",
  });
} catch {
  process.exitCode = 1;
}
