import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { ErrorCodes, type OmniRelayStatus } from "../src/index.js";
import { statusTable } from "../src/wire/index.js";

// One catalog, one doc table, no stray codes: ErrorCodes (packages/core/src/errors/codes.ts, with its groups' entries
// in the sibling files it imports) is the source; the table in docs/protocol.md is rendered from its TSDoc
// (UPDATE_DOCS=1 rewrites it), and every package's sources are scanned for code strings that are not in it or that do
// not go through it.

const root = fileURLToPath(new URL("../../../", import.meta.url));
const codesFile = join(root, "packages/core/src/errors/codes.ts");
const docFile = join(root, "docs/protocol.md");

/** Each group and the prefix its codes share; a code belongs to the longest prefix it starts with. */
const groupPrefixes: Readonly<Record<keyof typeof ErrorCodes, string>> = {
  rpc: "omnirelay.",
  auth: "omnirelay.auth.",
  grpc: "omnirelay.grpc.",
  controlPlane: "omnirelay.control.",
  resourceLease: "resourcelease.",
  worker: "resourcelease.worker.",
  replication: "resourcelease.replication.",
  replicationHub: "resourcelease.replication.grpc.",
  deterministic: "resourcelease.deterministic.",
  sqlite: "resourcelease.sqlite.",
  objectStorage: "resourcelease.objectstorage.",
  jetstream: "resourcelease.jetstream.",
  peers: "peers.",
};

/** Dotted strings in sources that look like codes but are not (record kinds, metric and span names, namespaces). */
const notCodes = new Set([
  "omnirelay.version",
  "omnirelay.effect",
  "omnirelay.control",
  "omnirelay.rpc.requests",
  "omnirelay.rpc.request.duration",
  "omnirelay.governance.audit.v1",
  "resourcelease.replication",
  "resourcelease.operation",
  "resourcelease.mesh",
  "resourcelease.billing",
  "resourcelease.db",
]);

const codeLike = /^(resourcelease|omnirelay|peers)\.[a-z0-9_.]*[a-z0-9_]$/;

interface Entry {
  readonly group: string;
  readonly key: string;
  readonly code: string;
  /** The statuses of the TSDoc (`any`: the remote's; `none`: never thrown). */
  readonly statuses: readonly string[];
  readonly http?: number;
  readonly meaning: string;
}

/** A source file of the catalog, parsed. */
function parse(path: string): ts.SourceFile {
  return ts.createSourceFile(path, readFileSync(path, "utf8"), ts.ScriptTarget.Latest, true);
}

/** The object literal of `const name = { ... } as const` in `sf`. */
function constObject(sf: ts.SourceFile, name: string): ts.ObjectLiteralExpression | undefined {
  const declaration = sf.statements
    .filter(ts.isVariableStatement)
    .flatMap((s) => s.declarationList.declarations)
    .find((d) => d.name.getText() === name);
  const init = declaration?.initializer;
  return init && ts.isAsExpression(init) && ts.isObjectLiteralExpression(init.expression) ? init.expression : undefined;
}

/** Every file the catalog is written in: codes.ts and the sibling files its groups are imported from. */
const catalogFiles = new Set([codesFile]);

/**
 * The object of a group: written inline, or (as codes.ts does) a constant imported from a sibling file, which is
 * followed there.
 */
function groupObject(codes: ts.SourceFile, group: ts.PropertyAssignment): ts.ObjectLiteralExpression {
  const init = group.initializer;
  if (ts.isObjectLiteralExpression(init)) return init;
  const name = init.getText();
  const from = codes.statements.filter(ts.isImportDeclaration).find((d) => {
    const bindings = d.importClause?.namedBindings;
    return bindings && ts.isNamedImports(bindings) && bindings.elements.some((e) => e.name.getText() === name);
  });
  if (!from) throw new Error(`ErrorCodes.${group.name.getText()} is neither an object nor an imported constant.`);
  const path = join(dirname(codesFile), (from.moduleSpecifier as ts.StringLiteral).text.replace(/\.js$/, ".ts"));
  catalogFiles.add(path);
  const object = constObject(parse(path), name);
  if (!object) throw new Error(`${relative(root, path)} declares no \`const ${name} = { ... } as const\`.`);
  return object;
}

/** Reads every entry of the catalog with its TSDoc, from its source files. */
function readCatalog(): Entry[] {
  const sf = parse(codesFile);
  const object = constObject(sf, "ErrorCodes");
  if (!object) throw new Error("packages/core/src/errors/codes.ts declares no ErrorCodes.");
  const entries: Entry[] = [];
  for (const group of object.properties as ts.NodeArray<ts.PropertyAssignment>) {
    for (const prop of groupObject(sf, group).properties as ts.NodeArray<ts.PropertyAssignment>) {
      const doc = ts
        .getJSDocCommentsAndTags(prop)
        .map((d) => ts.getTextOfJSDocComment(d.comment) ?? "")
        .join(" ")
        .replace(/\s+/g, " ")
        .trim();
      const m = /^([a-z-]+(?:, [a-z-]+)*)(?: \(HTTP (\d{3})\))?: (.+)$/.exec(doc);
      if (!m)
        throw new Error(
          `The TSDoc of ErrorCodes.${group.name.getText()}.${prop.name.getText()} must start with "status: ".`,
        );
      entries.push({
        group: group.name.getText(),
        key: prop.name.getText(),
        code: (prop.initializer as ts.StringLiteral).text,
        statuses: m[1]!.split(", "),
        ...(m[2] ? { http: Number(m[2]) } : {}),
        meaning: m[3]!,
      });
    }
  }
  return entries;
}

const entries = readCatalog();
const codes = new Set(entries.map((e) => e.code));
const families = entries.filter((e) => e.code.endsWith("_")).map((e) => e.code);
const isCatalogued = (code: string) => codes.has(code) || families.some((f) => code.startsWith(f));

function keyOf(code: string): { group: string; key: string } {
  const [group, prefix] = Object.entries(groupPrefixes)
    .filter(([, p]) => code.startsWith(p))
    .sort((a, b) => b[1].length - a[1].length)[0]!;
  const rest = code.slice(prefix.length);
  const family = rest.endsWith("_");
  const key = rest.replace(/_$/, "").replace(/[._]([a-z0-9])/g, (_, c: string) => c.toUpperCase());
  return { group, key: family ? `${key}Prefix` : key };
}

const wireName = (status: string) => statusTable.get(status as OmniRelayStatus)?.wireName ?? status;

/** The table of docs/protocol.md, rendered from the catalog. */
function renderTable(): string {
  const cell = (text: string) => text.replace(/\|/g, "\\|");
  const rows = entries.map((e) => {
    const code = e.code.endsWith("_") ? `\`${e.code}<status>\`` : `\`${e.code}\``;
    const status =
      e.statuses[0] === "none"
        ? "— (never thrown)"
        : e.statuses[0] === "any"
          ? "the remote's"
          : e.statuses.map(wireName).join(", ") + (e.http ? ` (HTTP ${e.http})` : "");
    const meaning = e.meaning.replace(/\{@link ([^}]+)\}/g, "`$1`");
    return `| ${code} | ${status} | ${cell(meaning.charAt(0).toUpperCase() + meaning.slice(1))} |`;
  });
  return ["| code | status | meaning |", "|---|---|---|", ...rows].join("\n");
}

/** The status table of docs/protocol.md, rendered from the one status table of core. */
function renderStatusTable(): string {
  const rows = [...statusTable.values()]
    .filter((i) => i.status !== "ok")
    .map((i) => `| ${i.wireName} | ${i.httpStatus} | ${i.grpcCode} |`);
  return ["| status | HTTP | gRPC |", "|---|---|---|", ...rows].join("\n");
}

/** Checks (or with UPDATE_DOCS=1 rewrites) the block of docs/protocol.md between the `name` markers. */
function expectDocBlock(name: string, content: string): void {
  const begin = `<!-- ${name}:begin -->`;
  const end = `<!-- ${name}:end -->`;
  const doc = readFileSync(docFile, "utf8");
  const start = doc.indexOf(begin);
  const stop = doc.indexOf(end);
  expect(start, `docs/protocol.md needs ${begin} … ${end}`).toBeGreaterThan(-1);
  const current = doc.slice(start + begin.length, stop).trim();
  if (process.env.UPDATE_DOCS === "1" && current !== content) {
    writeFileSync(docFile, `${doc.slice(0, start + begin.length)}\n${content}\n${doc.slice(stop)}`);
    return;
  }
  expect(current, `docs/protocol.md is out of date; UPDATE_DOCS=1 rewrites the ${name} block`).toBe(content);
}

/** The files under `dir` whose names end in `suffix`, generated code and dependencies left out. */
function files(dir: string, suffix: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return entry.name === "gen" || entry.name === "node_modules" ? [] : files(path, suffix);
    return entry.name.endsWith(suffix) ? [path] : [];
  });
}

/** Non-test TypeScript sources of every package and app. */
function sources(): string[] {
  return ["packages", "apps"].flatMap((top) =>
    readdirSync(join(root, top)).flatMap((pkg) =>
      files(join(root, top, pkg, "src"), ".ts").filter((path) => !path.endsWith(".test.ts")),
    ),
  );
}

/** The string literals (and the text parts of template literals) of a file, comments left out. */
function literals(sf: ts.SourceFile): string[] {
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) out.push(node.text);
    else if (ts.isTemplateExpression(node)) out.push(node.head.text, ...node.templateSpans.map((s) => s.literal.text));
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

describe("ErrorCodes", () => {
  it("is what its source file says, one entry per code", () => {
    const runtime = Object.entries(ErrorCodes).flatMap(([group, o]) =>
      Object.entries(o).map(([key, code]) => `${group}.${key}=${code}`),
    );
    expect(entries.map((e) => `${e.group}.${e.key}=${e.code}`)).toEqual(runtime);
    expect(codes.size, "a code is listed twice").toBe(entries.length);
  });

  it("names every entry by one rule: the group of the longest prefix, the rest in camelCase", () => {
    for (const e of entries)
      expect({ code: e.code, ...keyOf(e.code) }).toEqual({ code: e.code, group: e.group, key: e.key });
  });

  it("gives every entry the status it travels with", () => {
    for (const e of entries) {
      const known = e.statuses.every((s) => statusTable.has(s as OmniRelayStatus));
      const special = e.statuses.length === 1 && (e.statuses[0] === "any" || e.statuses[0] === "none");
      expect(known || special, `${e.code}: ${e.statuses.join(", ")}`).toBe(true);
    }
  });
});

describe("docs/protocol.md", () => {
  it("lists every code in one table, as the catalog says (UPDATE_DOCS=1 rewrites it)", () => {
    expectDocBlock("error-codes", renderTable());
  });

  it("maps the statuses as the status table does", () => {
    expectDocBlock("status-table", renderStatusTable());
  });

  it("names no code that the catalog does not hold, nor does any other doc", () => {
    const docs = [join(root, "README.md"), ...files(join(root, "docs"), ".md")];
    const unknown = docs.flatMap((path) =>
      [...readFileSync(path, "utf8").matchAll(/`((?:resourcelease|omnirelay|peers)\.[a-z0-9_.]+)(?:<status>)?`/g)]
        .map((m) => m[1]!)
        .filter((c) => codeLike.test(c) && !isCatalogued(c) && !notCodes.has(c))
        .map((c) => `${relative(root, path)}: ${c}`),
    );
    expect(unknown).toEqual([]);
  });
});

describe("the sources", () => {
  const files = sources().map((path) => ({
    path: relative(root, path),
    sf: ts.createSourceFile(path, readFileSync(path, "utf8"), ts.ScriptTarget.Latest, true),
  }));

  it("hold no code that is not in the catalog, and spell catalogued codes as ErrorCodes entries", () => {
    const stray: string[] = [];
    for (const { path, sf } of files) {
      if ([...catalogFiles].some((file) => path === relative(root, file))) continue;
      for (const value of literals(sf)) {
        if (!codeLike.test(value) || notCodes.has(value)) continue;
        stray.push(
          `${path}: "${value}" ${isCatalogued(value) ? "is an ErrorCodes entry; use it" : "is not in ErrorCodes"}`,
        );
      }
    }
    expect(stray).toEqual([]);
  });

  it("throw each code only with a status its entry lists", () => {
    const byRef = new Map(entries.map((e) => [`ErrorCodes.${e.group}.${e.key}`, e]));
    const wrong: string[] = [];
    for (const { path, sf } of files) {
      const visit = (node: ts.Node): void => {
        if (ts.isNewExpression(node) && node.expression.getText() === "OmniRelayError") {
          const options = node.arguments?.[0];
          if (options && ts.isObjectLiteralExpression(options)) {
            const prop = (name: string) =>
              options.properties.find(
                (p): p is ts.PropertyAssignment => ts.isPropertyAssignment(p) && p.name.getText() === name,
              );
            const status = prop("status")?.initializer;
            const entry = byRef.get(prop("code")?.initializer.getText() ?? "");
            if (entry && status && ts.isStringLiteral(status) && !entry.statuses.includes("any")) {
              if (!entry.statuses.includes(status.text)) wrong.push(`${path}: ${entry.code} thrown as ${status.text}`);
            }
          }
        }
        ts.forEachChild(node, visit);
      };
      visit(sf);
    }
    expect(wrong).toEqual([]);
  });
});
