import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

// The published surface, read the way a user's compiler reads it: every name an entry exports (types included), and
// whether a user hovering it gets documentation.
const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const packageJson = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
  exports: Record<string, unknown>;
};

const entries: Record<string, string> = {
  ".": "src/index.ts",
  "./middleware": "src/middleware/index.ts",
  "./backpressure": "src/backpressure/index.ts",
  "./peers": "src/peers/index.ts",
  "./replication": "src/replication/index.ts",
  "./deterministic": "src/deterministic/index.ts",
  "./wire": "src/wire/index.ts",
  "./testing": "src/testing/index.ts",
};

const program = ts.createProgram(
  Object.values(entries).map((file) => join(root, file)),
  {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
  },
);
const checker = program.getTypeChecker();

interface ExportedName {
  readonly name: string;
  readonly documented: boolean;
}

function exportsOf(file: string): ExportedName[] {
  const source = program.getSourceFile(join(root, file));
  if (source === undefined) throw new Error(`${file} is not in the program`);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  if (moduleSymbol === undefined) throw new Error(`${file} is not a module`);
  return checker
    .getExportsOfModule(moduleSymbol)
    .map((symbol) => ({ name: symbol.getName(), documented: documentationOf(symbol).length > 0 }));
}

// The first documentation along the alias chain: the declaration itself, or, for a namespace re-export
// (`export type * as X from`), the comment on that export.
function documentationOf(symbol: ts.Symbol): string {
  let current: ts.Symbol | undefined = symbol;
  for (let hops = 0; current !== undefined && hops < 10; hops++) {
    const doc = ts.displayPartsToString(current.getDocumentationComment(checker)).trim();
    if (doc.length > 0) return doc;
    for (const declaration of current.declarations ?? []) {
      if (ts.isNamespaceExport(declaration)) {
        const comments = ts.getJSDocCommentsAndTags(declaration.parent);
        const text = comments
          .map((comment) => ts.getTextOfJSDocComment(comment.comment) ?? "")
          .join("")
          .trim();
        if (text.length > 0) return text;
      }
    }
    current = current.flags & ts.SymbolFlags.Alias ? checker.getImmediateAliasedSymbol(current) : undefined;
  }
  return "";
}

describe("the public surface of @omnirelay/core", () => {
  const rootNames = exportsOf(entries["."]!);

  it("the root entry exports at most 100 names", () => {
    expect(rootNames.length).toBeGreaterThan(50);
    expect(rootNames.length).toBeLessThanOrEqual(100);
  });

  it("internals are not on the root entry", () => {
    const names = new Set(rootNames.map((entry) => entry.name));
    for (const internal of [
      "getPropertyIgnoreCase",
      "validatePayload",
      "validateToken",
      "decodeJsonBody",
      "encodeJsonBody",
      "composeInbound",
      "eventTypeFromNumber",
    ]) {
      expect(names.has(internal), internal).toBe(false);
    }
  });

  it("every entry point the package publishes is one this test reads, and none is empty", () => {
    const published = Object.keys(packageJson.exports).filter((entry) => entry !== "./package.json");
    expect(published.sort()).toEqual(Object.keys(entries).sort());
    for (const file of Object.values(entries)) expect(exportsOf(file).length, file).toBeGreaterThan(0);
  });

  it("no entry reaches a test or a test helper (they live next to the tests, outside what tsup bundles)", () => {
    const sources = program
      .getSourceFiles()
      .map((file) => file.fileName)
      .filter((file) => file.startsWith(join(root, "src")));
    // The program holds the entries and everything they import, which is what the build bundles.
    expect(sources.length).toBeGreaterThan(Object.keys(entries).length);
    const isTestOnly = (file: string) => /(^|[-.])test[-.]/.test(file.slice(file.lastIndexOf("/") + 1));
    expect(sources.filter(isTestOnly).map((file) => file.slice(root.length + 1))).toEqual([]);
    // The rule matches the helpers that do exist, so a renamed one cannot slip past it unnoticed.
    for (const helper of ["src/queue/test-helpers.ts", "src/replication/test-fixtures.ts", "src/queue/queue.test.ts"]) {
      expect(isTestOnly(join(root, helper)), helper).toBe(true);
    }
  });

  it("every exported name carries TSDoc", () => {
    const undocumented = Object.entries(entries).flatMap(([entry, file]) =>
      exportsOf(file)
        .filter((name) => !name.documented)
        .map((name) => `${entry} ${name.name}`),
    );
    expect(undocumented).toEqual([]);
  });
});
