// After tsup: the CommonJS declarations (dist/*.d.cts) are the ESM build's dist/*.d.ts, with their imports of each
// other pointing at the .d.cts files (`./x.js` → `./x.cjs`). They import types from jose, an ES module, which
// TypeScript refuses in a CommonJS project on `module: node16` (TS1479) unless the import says it resolves as an ES
// module, which a type-only import may do on every module setting:
// `import type { X } from 'jose' with { 'resolution-mode': 'import' }`.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const dist = new URL("../dist/", import.meta.url).pathname;
const esmOnly = ["jose"];
const declarations = readdirSync(dist).filter((f) => f.endsWith(".d.ts"));
if (declarations.length === 0) throw new Error("cjs-declarations: no dist/*.d.ts (run tsup first)");
let marked = 0;
for (const file of declarations) {
  const esm = readFileSync(join(dist, file), "utf8");
  // Every relative specifier is a sibling declaration (`from './x.js'`, or `import './x.js'` for its side effects).
  let out = esm.replace(/((?:from|import) '\.\/[^']+)\.js';/g, "$1.cjs';");
  const unmapped = out.split("\n").filter((l) => /'\.\/[^']+\.js'/.test(l));
  if (unmapped.length > 0) throw new Error(`${file}: cannot map this import to a .d.cts: ${unmapped.join(" | ")}`);
  for (const name of esmOnly) {
    const from = `from '${name}'`;
    const before = out;
    out = out.replace(
      new RegExp(`^import (?:type )?(\\{[^}]*\\}) ${from};$`, "gm"),
      `import type $1 ${from} with { 'resolution-mode': 'import' };`,
    );
    if (out !== before) marked++;
    // Anything else that names the package (a namespace import, a re-export) would still fail: stop the build.
    const left = out.split("\n").filter((l) => l.includes(from) && !l.includes("'resolution-mode'"));
    if (left.length > 0) throw new Error(`${file}: cannot mark this import of ${name}: ${left.join(" | ")}`);
  }
  writeFileSync(join(dist, file.replace(/\.d\.ts$/, ".d.cts")), out);
}
console.log(`cjs-declarations: wrote ${declarations.length} .d.cts file(s), marked jose type imports in ${marked}`);
