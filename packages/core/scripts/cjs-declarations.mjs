// After tsup: the CommonJS declarations (dist/*.d.cts) import types from jose, an ES module. TypeScript refuses that
// in a CommonJS project on `module: node16` (TS1479) unless the import says it resolves as an ES module, which a
// type-only import may do on every module setting: `import type { X } from 'jose' with { 'resolution-mode': 'import' }`.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dist = new URL("../dist/", import.meta.url).pathname;
const esmOnly = ["jose"];
let rewritten = 0;
for (const file of readdirSync(dist).filter((f) => f.endsWith(".d.cts"))) {
  const path = join(dist, file);
  const text = readFileSync(path, "utf8");
  let out = text;
  for (const name of esmOnly) {
    const from = `from '${name}'`;
    out = out.replace(
      new RegExp(`^import (?:type )?(\\{[^}]*\\}) ${from};$`, "gm"),
      `import type $1 ${from} with { 'resolution-mode': 'import' };`,
    );
    // Anything else that names the package (a namespace import, a re-export) would still fail: stop the build.
    const left = out.split("\n").filter((l) => l.includes(from) && !l.includes("'resolution-mode'"));
    if (left.length > 0) throw new Error(`${file}: cannot mark this import of ${name}: ${left.join(" | ")}`);
  }
  if (out !== text) {
    writeFileSync(path, out);
    rewritten++;
  }
}
console.log(`cjs-declarations: marked jose type imports in ${rewritten} .d.cts file(s)`);
