/** The lint: finds every use of the removed `tablelease::*` contracts that is left in a TypeScript file. */
import { relative } from "node:path";
import { Node, type SourceFile, SyntaxKind } from "ts-morph";
import { isPayloadRead, loadProject, payloadLiteralsWithRemovedFields, propertyKey, stringNodes } from "./ast.js";
import {
  ERROR_CODE_RENAMES,
  ERROR_CODES_WITHOUT_EQUIVALENT,
  lookup,
  OLD_NAMESPACE,
  OLD_PROCEDURE,
  PAYLOAD_MARKERS,
  REMOVED_FIELDS,
  TYPE_RENAMES,
  TYPES_WITHOUT_EQUIVALENT,
} from "./map.js";

/** The rules, each a kind of leftover. */
export type LintRule =
  | "tablelease/payload-field"
  | "tablelease/payload-read"
  | "tablelease/procedure"
  | "tablelease/type-name"
  | "tablelease/error-code"
  | "tablelease/token-without-fencing";

/** One finding; `line` and `column` are 1-based. */
export interface LintFinding {
  readonly path: string;
  readonly line: number;
  readonly column: number;
  readonly rule: LintRule;
  readonly message: string;
}

function at(node: Node, rule: LintRule, message: string): LintFinding {
  const { line, column } = node.getSourceFile().getLineAndColumnAtPos(node.getStart());
  return { path: node.getSourceFile().getFilePath(), line, column, rule, message };
}

const FIELD_HINT = "use resourceType/resourceId (qualified: resourceType 'table', resourceId '<namespace>.<table>')";

function payloadFields(file: SourceFile): LintFinding[] {
  const out: LintFinding[] = [];
  for (const object of payloadLiteralsWithRemovedFields(file).reverse()) {
    for (const element of object.getProperties()) {
      const key = propertyKey(element);
      if (key && (REMOVED_FIELDS as readonly string[]).includes(key)) {
        out.push(
          at(element, "tablelease/payload-field", `'${key}' was removed from the lease payload: ${FIELD_HINT}.`),
        );
      }
    }
  }
  // Hand-written payload types: an interface or type literal with namespace/table next to a payload-only field.
  for (const members of [
    ...file.getDescendantsOfKind(SyntaxKind.InterfaceDeclaration),
    ...file.getDescendantsOfKind(SyntaxKind.TypeLiteral),
  ]) {
    const props = members.getProperties();
    const names = props.map((p) => p.getName().toLowerCase());
    if (!names.some((n) => (PAYLOAD_MARKERS as readonly string[]).includes(n))) continue;
    for (const p of props) {
      const name = p.getName().toLowerCase();
      if ((REMOVED_FIELDS as readonly string[]).includes(name)) {
        out.push(
          at(p, "tablelease/payload-field", `'${name}' was removed from the lease payload type: ${FIELD_HINT}.`),
        );
      }
    }
  }
  return out;
}

function payloadReads(file: SourceFile): LintFinding[] {
  return file
    .getDescendantsOfKind(SyntaxKind.PropertyAccessExpression)
    .filter(isPayloadRead)
    .map((read) =>
      at(
        read.getNameNode(),
        "tablelease/payload-read",
        `payloads have no '${read.getName()}' any more: read resourceType/resourceId (or an attribute you set).`,
      ),
    );
}

function strings(file: SourceFile): LintFinding[] {
  const out: LintFinding[] = [];
  for (const node of stringNodes(file)) {
    if (!Node.isStringLiteral(node) && !Node.isNoSubstitutionTemplateLiteral(node)) continue;
    const value = node.getLiteralValue();
    if (OLD_PROCEDURE.test(value) || OLD_NAMESPACE.test(value)) {
      out.push(at(node, "tablelease/procedure", `'${value}' names a removed procedure namespace: use resourcelease.`));
    } else if (lookup(ERROR_CODE_RENAMES, value)) {
      out.push(at(node, "tablelease/error-code", `'${value}' is now '${lookup(ERROR_CODE_RENAMES, value)}'.`));
    } else if (lookup(ERROR_CODES_WITHOUT_EQUIVALENT, value)) {
      out.push(
        at(
          node,
          "tablelease/error-code",
          `'${value}' no longer exists: ${lookup(ERROR_CODES_WITHOUT_EQUIVALENT, value)}.`,
        ),
      );
    }
  }
  for (const head of file.getDescendantsOfKind(SyntaxKind.TemplateHead)) {
    if (OLD_PROCEDURE.test(head.getText().slice(1))) {
      out.push(at(head, "tablelease/procedure", "a removed procedure namespace: use resourcelease."));
    }
  }
  return out;
}

function typeNames(file: SourceFile): LintFinding[] {
  const out: LintFinding[] = [];
  for (const id of file.getDescendantsOfKind(SyntaxKind.Identifier)) {
    const name = id.getText();
    const rename = lookup(TYPE_RENAMES, name);
    const instead = rename ? `use ${rename.name} from @omnirelay/core` : lookup(TYPES_WITHOUT_EQUIVALENT, name);
    if (instead) out.push(at(id, "tablelease/type-name", `${name} was removed: ${instead}.`));
  }
  return out;
}

/** An ownership token rebuilt by hand from the three old fields loses `fencingToken`, and the server refuses it. */
function tokensWithoutFencing(file: SourceFile): LintFinding[] {
  return file
    .getDescendantsOfKind(SyntaxKind.ObjectLiteralExpression)
    .filter((o) => {
      const keys = new Set(o.getProperties().map(propertyKey));
      if (o.getProperties().some((p) => Node.isSpreadAssignment(p))) return false;
      return keys.has("sequenceid") && keys.has("attempt") && keys.has("leaseid") && !keys.has("fencingtoken");
    })
    .map((o) =>
      at(
        o,
        "tablelease/token-without-fencing",
        "an ownership token needs its fencingToken: send back the token the lease returned, unchanged.",
      ),
    );
}

/** Every finding in one file, in source order. */
export function lintSourceFile(file: SourceFile): LintFinding[] {
  return [
    ...payloadFields(file),
    ...payloadReads(file),
    ...strings(file),
    ...typeNames(file),
    ...tokensWithoutFencing(file),
  ].sort((a, b) => a.line - b.line || a.column - b.column);
}

/** Lints every TypeScript file under `paths`. */
export function runLint(paths: readonly string[]): LintFinding[] {
  return loadProject(paths)
    .getSourceFiles()
    .flatMap(lintSourceFile)
    .sort((a, b) => a.path.localeCompare(b.path) || a.line - b.line || a.column - b.column);
}

/** `path:line:column  rule  message`, with paths relative to `cwd`. */
export function formatFinding(finding: LintFinding, cwd: string): string {
  return `${relative(cwd, finding.path)}:${finding.line}:${finding.column}  ${finding.rule}  ${finding.message}`;
}
