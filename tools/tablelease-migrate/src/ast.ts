/** What the codemod and the lint both need to recognise in a TypeScript file. */
import {
  Node,
  type ObjectLiteralElementLike,
  type ObjectLiteralExpression,
  Project,
  type PropertyAccessExpression,
  type SourceFile,
  SyntaxKind,
} from "ts-morph";
import { PAYLOAD_MARKERS, REMOVED_FIELDS } from "./map.js";

/** Type names of lease payloads, old and new. */
const PAYLOAD_TYPE_NAME = /(TableLease|ResourceLease)\w*(Payload|WorkItem)\b/;

/** A property of an object literal by its (case-insensitive) name, as JSON callers were matched. */
export function propertyKey(element: ObjectLiteralElementLike): string | undefined {
  if (Node.isPropertyAssignment(element) || Node.isShorthandPropertyAssignment(element)) {
    const name = element.getNameNode();
    if (Node.isIdentifier(name) || Node.isStringLiteral(name) || Node.isNoSubstitutionTemplateLiteral(name)) {
      return (Node.isIdentifier(name) ? name.getText() : name.getLiteralText()).toLowerCase();
    }
  }
  return undefined;
}

function keyOfParentProperty(node: Node): string | undefined {
  const parent = node.getParent();
  if (Node.isPropertyAssignment(parent)) return propertyKey(parent);
  return undefined;
}

/**
 * Whether an object literal builds a lease payload: it has a payload-only field (`partitionKey`, `payloadEncoding`,
 * `resourceType`, `resourceId`), or it is the value of a `payload` property or an element of a `payloads` array, or
 * its contextual type is named like a lease payload.
 */
export function isPayloadLiteral(object: ObjectLiteralExpression): boolean {
  const keys = object.getProperties().map(propertyKey);
  if (keys.some((k) => k !== undefined && (PAYLOAD_MARKERS as readonly string[]).includes(k))) return true;
  if (keyOfParentProperty(object) === "payload") return true;
  const parent = object.getParent();
  if (Node.isArrayLiteralExpression(parent) && keyOfParentProperty(parent) === "payloads") return true;
  const contextual = object.getContextualType()?.getText() ?? "";
  return PAYLOAD_TYPE_NAME.test(contextual);
}

/** The removed fields an object literal sets, by lower-case name. */
export function removedFields(object: ObjectLiteralExpression): Map<string, ObjectLiteralElementLike> {
  const found = new Map<string, ObjectLiteralElementLike>();
  for (const element of object.getProperties()) {
    const key = propertyKey(element);
    if (key && (REMOVED_FIELDS as readonly string[]).includes(key)) found.set(key, element);
  }
  return found;
}

/** Object literals that build a payload and still set `namespace` or `table`, last in the file first. */
export function payloadLiteralsWithRemovedFields(file: SourceFile): ObjectLiteralExpression[] {
  return file
    .getDescendantsOfKind(SyntaxKind.ObjectLiteralExpression)
    .filter((o) => removedFields(o).size > 0 && isPayloadLiteral(o))
    .reverse();
}

/**
 * Reads of a removed field from a payload: `x.payload.table`, `grant.payload.namespace`, or `p.table` where `p`'s type
 * has `partitionKey` and `payloadEncoding`.
 */
export function isPayloadRead(access: PropertyAccessExpression): boolean {
  const name = access.getName().toLowerCase();
  if (!(REMOVED_FIELDS as readonly string[]).includes(name)) return false;
  const target = access.getExpression();
  if (Node.isPropertyAccessExpression(target) && target.getName() === "payload") return true;
  const type = target.getType();
  if (type.getProperty("partitionKey") !== undefined && type.getProperty("payloadEncoding") !== undefined) return true;
  // The type may not resolve (no node_modules next to the file): fall back to the name the declaration gives it.
  const declared = target.getSymbol()?.getDeclarations()[0];
  const typeNode =
    declared && (Node.isParameterDeclaration(declared) || Node.isVariableDeclaration(declared))
      ? declared.getTypeNode()?.getText()
      : undefined;
  return typeNode !== undefined && PAYLOAD_TYPE_NAME.test(typeNode);
}

/** String-valued nodes whose text the codemod may rewrite: plain strings and the head of a template. */
export function stringNodes(file: SourceFile): Node[] {
  return file.getDescendants().filter((n) => Node.isStringLiteral(n) || Node.isNoSubstitutionTemplateLiteral(n));
}

/** The name of the property a string is the value of (`{ namespace: "tablelease" }` → `namespace`). */
export function valueOfProperty(node: Node): string | undefined {
  const parent = node.getParent();
  return Node.isPropertyAssignment(parent) && parent.getInitializer() === node ? propertyKey(parent) : undefined;
}

/** A project over the TypeScript files under the given folders or files (no node_modules, no .d.ts). */
export function loadProject(paths: readonly string[]): Project {
  const project = new Project({
    skipAddingFilesFromTsConfig: true,
    compilerOptions: { strict: true, target: 9 /* ES2022 */, skipLibCheck: true, noEmit: true },
  });
  for (const path of paths) {
    if (/\.(c|m)?tsx?$/.test(path)) project.addSourceFileAtPath(path);
    else project.addSourceFilesAtPaths([`${path}/**/*.{ts,tsx,mts,cts}`, `!${path}/**/node_modules/**`]);
  }
  for (const file of project.getSourceFiles()) {
    if (file.isDeclarationFile()) project.removeSourceFile(file);
  }
  return project;
}
