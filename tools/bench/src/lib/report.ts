/** Results of a run: collection, medians, OmniRelay/peer ratios, the markdown table and the JSON file. */

import type { Metric, Scenario } from "./scenarios.js";
import { median } from "./stats.js";
import { PEERS, SYSTEM_IDS, SYSTEM_LABELS, type SystemId } from "./systems.js";

/** Samples of one scenario, per metric, per system. */
export type Samples = Map<string, Map<SystemId, number[]>>;

/** The JSON shape of one metric of a scenario in bench-results.json. */
export interface MetricResult extends Metric {
  readonly values: Partial<Record<SystemId, { readonly samples: number[]; readonly median: number }>>;
  /** OmniRelay system → peer → OmniRelay median ÷ peer median. */
  readonly ratios: Partial<Record<SystemId, Partial<Record<SystemId, number>>>>;
}

/** The JSON shape of one scenario in bench-results.json. */
export interface ScenarioResult {
  readonly id: string;
  readonly title: string;
  readonly systems: readonly SystemId[];
  readonly metrics: MetricResult[];
}

/** Records one sample: the `values` one run of `scenario` measured on `system`. */
export function addSample(
  all: Map<string, Samples>,
  sample: { scenario: string; system: SystemId; values: Record<string, number> },
): void {
  const { scenario, system, values } = sample;
  const s = all.get(scenario) ?? new Map<string, Map<SystemId, number[]>>();
  all.set(scenario, s);
  for (const [key, value] of Object.entries(values)) {
    const m = s.get(key) ?? new Map<SystemId, number[]>();
    s.set(key, m);
    const list = m.get(system) ?? [];
    m.set(system, list);
    list.push(value);
  }
}

/** Medians and ratios of every scenario. */
export function summarize(list: readonly Scenario[], all: Map<string, Samples>): ScenarioResult[] {
  return list.map((scenario) => ({
    id: scenario.id,
    title: scenario.title,
    systems: scenario.systems,
    metrics: scenario.metrics.map((metric) => {
      const bySystem = all.get(scenario.id)?.get(metric.key);
      const values: MetricResult["values"] = {};
      for (const id of SYSTEM_IDS) {
        const samples = bySystem?.get(id);
        if (samples && samples.length > 0) values[id] = { samples, median: median(samples) };
      }
      const ratios: MetricResult["ratios"] = {};
      for (const omni of SYSTEM_IDS.filter((id) => !PEERS.includes(id))) {
        const o = values[omni]?.median;
        if (o === undefined) continue;
        const r: Partial<Record<SystemId, number>> = {};
        for (const peer of PEERS) {
          const p = values[peer]?.median;
          if (p !== undefined && p > 0) r[peer] = o / p;
        }
        ratios[omni] = r;
      }
      return { ...metric, values, ratios };
    }),
  }));
}

function fmt(value: number | undefined, unit: string): string {
  if (value === undefined || Number.isNaN(value)) return "—";
  if (unit === "ms") return value < 10 ? value.toFixed(2) : value.toFixed(0);
  return Math.round(value).toLocaleString("en-US");
}

/** The best peer median of a metric (highest or lowest, by its direction). */
export function bestPeer(m: MetricResult): { id: SystemId; median: number } | undefined {
  let best: { id: SystemId; median: number } | undefined;
  for (const id of PEERS) {
    const v = m.values[id]?.median;
    if (v === undefined || Number.isNaN(v)) continue;
    if (!best || (m.higherIsBetter ? v > best.median : v < best.median)) best = { id, median: v };
  }
  return best;
}

/** The markdown table: one row per scenario metric, medians per system, OmniRelay HTTP ÷ the best peer. */
export function markdownTable(results: readonly ScenarioResult[]): string {
  const header = ["Scenario", "Unit", ...SYSTEM_IDS.map((id) => SYSTEM_LABELS[id]), "HTTP ÷ best peer"];
  const lines = [`| ${header.join(" | ")} |`, `|${header.map((_, i) => (i < 2 ? " --- " : " ---: ")).join("|")}|`];
  for (const r of results) {
    for (const m of r.metrics) {
      const name = r.metrics.length > 1 ? `${r.title} — ${m.label ?? m.key}` : r.title;
      const best = bestPeer(m);
      const omni = m.values["omnirelay-http"]?.median;
      const ratio = best && omni !== undefined ? `${(omni / best.median).toFixed(2)}×` : "—";
      const cells = SYSTEM_IDS.map((id) => fmt(m.values[id]?.median, m.unit));
      lines.push(`| ${[name, m.unit, ...cells, ratio].join(" | ")} |`);
    }
  }
  return lines.join("\n");
}
