/** The codemod: rewrites what has a one-to-one replacement in the field map and leaves the rest to the lint. */
import { Node, type ObjectLiteralElementLike, type SourceFile, SyntaxKind } from "ts-morph";
import {
  isPayloadRead,
  loadProject,
  payloadLiteralsWithRemovedFields,
  propertyKey,
  removedFields,
  stringNodes,
  valueOfProperty,
} from "./ast.js";
import {
  ERROR_CODE_RENAMES,
  type IdentityMapping,
  lookup,
  OLD_NAMESPACE,
  OLD_PROCEDURE,
  QUALIFIED_RESOURCE_TYPE,
  TYPE_RENAMES,
} from "./map.js";

/** Options of {@link migrateSourceFile} and {@link runCodemod}. */
export interface CodemodOptions {
  /**
   * `qualified`: `{ namespace: N, table: T }` becomes `{ resourceType: "table", resourceId: "N.T" }` (a table stays
   * named the way it was). `split`: `namespace` becomes `resourceType` and `table` becomes `resourceId`, and reads of
   * `payload.namespace` / `payload.table` are renamed too.
   * @defaultValue "qualified"
   */
  readonly identity?: IdentityMapping;
}

/** What the codemod changed in one file. */
export interface FileChanges {
  readonly path: string;
  readonly changes: number;
}

const CORE = "@omnirelay/core";

/** The value of a removed field as code: its initializer, or the variable of a shorthand property. */
function valueText(element: ObjectLiteralElementLike): string {
  if (Node.isPropertyAssignment(element)) return element.getInitializerOrThrow().getText();
  return element.getText();
}

function literalValue(element: ObjectLiteralElementLike): string | undefined {
  if (!Node.isPropertyAssignment(element)) return undefined;
  const init = element.getInitializer();
  if (Node.isStringLiteral(init) || Node.isNoSubstitutionTemplateLiteral(init)) return init.getLiteralValue();
  return undefined;
}

/** `namespace` + `table` → one resourceId: a string literal when both are literals, else a template. */
function qualifiedId(namespace: ObjectLiteralElementLike, table: ObjectLiteralElementLike): string {
  const ns = literalValue(namespace);
  const t = literalValue(table);
  if (ns !== undefined && t !== undefined) return JSON.stringify(`${ns}.${t}`);
  const part = (element: ObjectLiteralElementLike, literal: string | undefined) =>
    literal !== undefined ? literal.replace(/[`\\]|\$\{/g, (m) => `\\${m}`) : `\${${valueText(element)}}`;
  return `\`${part(namespace, ns)}.${part(table, t)}\``;
}

function renameKey(element: ObjectLiteralElementLike, key: string): void {
  element.replaceWithText(`${key}: ${valueText(element)}`);
}

function rewritePayloads(file: SourceFile, identity: IdentityMapping): number {
  let changes = 0;
  for (const object of payloadLiteralsWithRemovedFields(file)) {
    const keys = new Set(object.getProperties().map(propertyKey));
    if (keys.has("resourcetype") || keys.has("resourceid")) continue; // half-migrated: the lint reports it
    const fields = removedFields(object);
    const namespace = fields.get("namespace");
    const table = fields.get("table");
    if (identity === "qualified" && namespace && table) {
      const id = qualifiedId(namespace, table);
      table.replaceWithText(`resourceId: ${id}`);
      namespace.replaceWithText(`resourceType: ${JSON.stringify(QUALIFIED_RESOURCE_TYPE)}`);
    } else {
      if (table) renameKey(table, "resourceId");
      if (namespace) renameKey(namespace, "resourceType");
    }
    changes++;
  }
  return changes;
}

function rewriteReads(file: SourceFile): number {
  const reads = file.getDescendantsOfKind(SyntaxKind.PropertyAccessExpression).filter(isPayloadRead).reverse();
  for (const read of reads) {
    read.getNameNode().replaceWithText(read.getName().toLowerCase() === "table" ? "resourceId" : "resourceType");
  }
  return reads.length;
}

function rewriteString(value: string, property: string | undefined): string | undefined {
  const procedure = OLD_PROCEDURE.exec(value);
  if (procedure) return `resourcelease${procedure[1]}::${value.slice(procedure[0].length)}`;
  if (property === "namespace" && OLD_NAMESPACE.test(value)) return value.replace(/^tablelease/, "resourcelease");
  return lookup(ERROR_CODE_RENAMES, value);
}

function rewriteStrings(file: SourceFile): number {
  let changes = 0;
  for (const node of stringNodes(file).reverse()) {
    if (!Node.isStringLiteral(node) && !Node.isNoSubstitutionTemplateLiteral(node)) continue;
    const next = rewriteString(node.getLiteralValue(), valueOfProperty(node));
    if (next === undefined) continue;
    node.setLiteralValue(next);
    changes++;
  }
  for (const head of file.getDescendantsOfKind(SyntaxKind.TemplateHead).reverse()) {
    const raw = head.getText(); // `tablelease::${
    if (!OLD_PROCEDURE.test(raw.slice(1))) continue;
    head.replaceWithText(`\`resourcelease${raw.slice("`tablelease".length)}`);
    changes++;
  }
  return changes;
}

/** Moves imports of renamed types to `@omnirelay/core` under their new names and renames their uses. */
function rewriteImports(file: SourceFile): number {
  const moved: Array<{ name: string; alias?: string; value: boolean }> = [];
  const renamedLocals = new Map<string, string>();
  const firstImport = file.getImportDeclarations()[0]?.getChildIndex() ?? 0;
  for (const declaration of file.getImportDeclarations()) {
    for (const specifier of declaration.getNamedImports()) {
      const rename = lookup(TYPE_RENAMES, specifier.getName());
      if (!rename) continue;
      const alias = specifier.getAliasNode()?.getText();
      if (!alias) renamedLocals.set(specifier.getName(), rename.name);
      moved.push({ name: rename.name, ...(alias ? { alias } : {}), value: rename.value === true });
      specifier.remove();
    }
    if (declaration.getNamedImports().length === 0 && !declaration.getDefaultImport()) {
      if (!declaration.getNamespaceImport()) declaration.remove();
    }
  }
  if (moved.length === 0) return 0;
  for (const id of file.getDescendantsOfKind(SyntaxKind.Identifier).reverse()) {
    const next = renamedLocals.get(id.getText());
    if (next && !Node.isImportSpecifier(id.getParent())) id.replaceWithText(next);
  }
  const core = file.getImportDeclarations().find((d) => d.getModuleSpecifierValue() === CORE && !d.isTypeOnly());
  const specifiers = moved.map((m) => ({ name: m.name, ...(m.alias ? { alias: m.alias } : {}), isTypeOnly: !m.value }));
  if (core) core.addNamedImports(specifiers);
  else file.insertImportDeclaration(firstImport, { moduleSpecifier: CORE, namedImports: specifiers });
  return moved.length;
}

/** Rewrites one file in memory; returns the number of changes. */
export function migrateSourceFile(file: SourceFile, options: CodemodOptions = {}): number {
  const identity = options.identity ?? "qualified";
  let changes = rewritePayloads(file, identity);
  if (identity === "split") changes += rewriteReads(file);
  changes += rewriteStrings(file);
  changes += rewriteImports(file);
  return changes;
}

/** Rewrites every TypeScript file under `paths`; writes them unless `dryRun`. */
export async function runCodemod(
  paths: readonly string[],
  options: CodemodOptions & { readonly dryRun?: boolean } = {},
): Promise<FileChanges[]> {
  const project = loadProject(paths);
  const changed: FileChanges[] = [];
  for (const file of project.getSourceFiles()) {
    const changes = migrateSourceFile(file, options);
    if (changes > 0) changed.push({ path: file.getFilePath(), changes });
  }
  if (!options.dryRun) await project.save();
  return changed;
}
