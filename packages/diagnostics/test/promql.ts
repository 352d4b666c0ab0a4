import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parse } from "yaml";

/** The repository's deploy/ folder. */
export const deployDir = resolve(import.meta.dirname, "../../../deploy");

const keywords = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "bool",
  "and",
  "or",
  "unless",
  "offset",
  "inf",
  "nan",
]);

/**
 * The metric names a PromQL expression selects. String literals, label matchers (`{…}`), range and subquery
 * brackets (`[…]`) and the label lists of `by`/`without`/`on`/`ignoring`/`group_*` are removed first; what is left
 * are identifiers, of which those followed by `(` are functions or aggregations and the rest are keywords or metric
 * names. Grafana variables (`$__range`) live only inside brackets and braces.
 */
export function metricNames(expr: string): string[] {
  let text = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
  text = text.replace(/\{[^}]*\}/g, " ").replace(/\[[^\]]*\]/g, " ");
  text = text.replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/gi, " ");
  // Number and duration literals: 0.95, 3e4, 5m, 1h30m.
  text = text.replace(/\b\d+(?:\.\d+)?(?:e[+-]?\d+)?(?:(?:ms|[smhdwy])\d*)*\b/gi, " ");
  const names = new Set<string>();
  for (const match of text.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = match[0];
    const rest = text.slice((match.index ?? 0) + name.length);
    if (/^\s*\(/.test(rest) || keywords.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}

/** One PromQL expression and where it comes from. */
export interface Query {
  readonly where: string;
  readonly expr: string;
}

interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly panels: { readonly title: string; readonly targets?: { readonly expr: string }[] }[];
  readonly templating?: { readonly list: { readonly name: string; readonly query?: string }[] };
}

/** Every dashboard under deploy/grafana/dashboards, by file name. */
export function dashboards(): Map<string, Dashboard> {
  const dir = join(deployDir, "grafana/dashboards");
  return new Map(
    readdirSync(dir)
      .filter((name) => name.endsWith(".json"))
      .map((name) => [name, JSON.parse(readFileSync(join(dir, name), "utf8")) as Dashboard]),
  );
}

/** The rules of deploy/alerts.yml. */
export function alertRules(): { alert: string; expr: string; for?: string }[] {
  const doc = parse(readFileSync(join(deployDir, "alerts.yml"), "utf8")) as {
    groups: { rules: { alert: string; expr: string; for?: string }[] }[];
  };
  return doc.groups.flatMap((g) => g.rules);
}

/** Every expression of every dashboard panel, dashboard variable query and alert rule. */
export function allQueries(): Query[] {
  const queries: Query[] = [];
  for (const [file, board] of dashboards()) {
    for (const panel of board.panels) {
      for (const target of panel.targets ?? []) queries.push({ where: `${file} / ${panel.title}`, expr: target.expr });
    }
    for (const variable of board.templating?.list ?? []) {
      const inner = /^label_values\((\w+)/.exec(variable.query ?? "")?.[1];
      if (inner) queries.push({ where: `${file} / $${variable.name}`, expr: inner });
    }
  }
  for (const rule of alertRules()) queries.push({ where: `alerts.yml / ${rule.alert}`, expr: rule.expr });
  return queries;
}
