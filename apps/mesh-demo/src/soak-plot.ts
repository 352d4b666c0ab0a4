import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { SoakOptions, SoakSample, SoakSummary } from "./soak-judge.js";

// The soak's RSS curve as an SVG (soak-results/soak-rss.svg): RSS and heap over time, one colour per dispatcher
// process, the warm-up shaded, each restart marked, and the ±10% band around the first process's median RSS after its
// warm-up (the judge's limit across restarts).

const W = 900;
const H = 360;
const PAD = { left: 64, right: 16, top: 28, bottom: 40 };
const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"];
const MiB = 1024 * 1024;

/** What the plot marks besides the samples. */
export interface SoakPlotMarks {
  readonly warmupMs: number;
  /** The first process's median RSS after its warm-up (the base of the ±10% band). */
  readonly baseRssBytes?: number;
  readonly title: string;
}

const esc = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;");

/** Renders the samples' RSS (solid) and heap (dashed) per dispatcher process. Empty samples give an empty plot. */
export function renderRssSvg(samples: readonly SoakSample[], marks: SoakPlotMarks): string {
  const tMax = Math.max(1, ...samples.map((s) => s.tMs));
  const yMax = Math.max(MiB, ...samples.map((s) => s.rssBytes), (marks.baseRssBytes ?? 0) * 1.1) * 1.05;
  const x = (t: number) => PAD.left + (t / tMax) * (W - PAD.left - PAD.right);
  const y = (bytes: number) => H - PAD.bottom - (bytes / yMax) * (H - PAD.top - PAD.bottom);
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<title>${esc(marks.title)}: RSS and heap of the dispatcher over time</title>`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${PAD.left}" y="16" font-size="13">${esc(marks.title)}</text>`,
    `<rect x="${x(0)}" y="${PAD.top}" width="${x(marks.warmupMs) - x(0)}" height="${H - PAD.top - PAD.bottom}" fill="#eee"/>`,
  ];
  if (marks.baseRssBytes) {
    const [lo, hi] = [y(marks.baseRssBytes * 1.1), y(marks.baseRssBytes * 0.9)];
    out.push(
      `<rect x="${x(0)}" y="${lo}" width="${x(tMax) - x(0)}" height="${hi - lo}" fill="#1f77b4" opacity="0.08"/>`,
    );
  }
  for (let i = 0; i <= 4; i++) {
    const bytes = (yMax / 4) * i;
    out.push(`<line x1="${PAD.left}" x2="${W - PAD.right}" y1="${y(bytes)}" y2="${y(bytes)}" stroke="#ddd"/>`);
    out.push(`<text x="${PAD.left - 6}" y="${y(bytes) + 4}" text-anchor="end">${Math.round(bytes / MiB)} MiB</text>`);
  }
  for (let i = 0; i <= 5; i++) {
    const t = (tMax / 5) * i;
    out.push(`<text x="${x(t)}" y="${H - PAD.bottom + 16}" text-anchor="middle">${Math.round(t / 1000)} s</text>`);
  }
  const incarnations = [...new Set(samples.map((s) => s.incarnation))].sort((a, b) => a - b);
  for (const n of incarnations) {
    const mine = samples.filter((s) => s.incarnation === n);
    const colour = COLOURS[(n - 1) % COLOURS.length] as string;
    const line = (pick: (s: SoakSample) => number) =>
      mine.map((s) => `${x(s.tMs).toFixed(1)},${y(pick(s)).toFixed(1)}`);
    out.push(
      `<polyline data-incarnation="${n}" fill="none" stroke="${colour}" stroke-width="1.5" points="${line((s) => s.rssBytes).join(" ")}"/>`,
    );
    out.push(
      `<polyline fill="none" stroke="${colour}" stroke-dasharray="4 3" points="${line((s) => s.heapUsedBytes).join(" ")}"/>`,
    );
    const first = mine[0];
    if (first && n > 1) {
      out.push(
        `<line x1="${x(first.tMs)}" x2="${x(first.tMs)}" y1="${PAD.top}" y2="${H - PAD.bottom}" stroke="#999"/>`,
      );
      out.push(`<text x="${x(first.tMs) + 3}" y="${PAD.top + 10}">kill -9</text>`);
    }
  }
  const legend = `RSS (solid) and heap used (dashed) per dispatcher process; grey: warm-up; band: ±10% of the first process`;
  out.push(`<text x="${PAD.left}" y="${H - 6}" fill="#555">${legend}</text>`, "</svg>");
  return `${out.join("\n")}\n`;
}

/** Writes `soak-samples.csv`, `soak-summary.json` and `soak-rss.svg` into `options.outDir`. */
export function writeSoakResults(options: SoakOptions, summary: SoakSummary, samples: readonly SoakSample[]): void {
  mkdirSync(options.outDir, { recursive: true });
  const columns = Object.keys(samples[0] ?? {}) as Array<keyof SoakSample>;
  writeFileSync(
    join(options.outDir, "soak-samples.csv"),
    `${columns.join(",")}\n${samples.map((s) => columns.map((c) => Math.round(s[c])).join(",")).join("\n")}\n`,
  );
  writeFileSync(join(options.outDir, "soak-summary.json"), `${JSON.stringify({ options, summary }, null, 2)}\n`);
  const base = summary.rssByIncarnationMiB[0];
  const how = summary.partitionBy ? ` (${summary.partitionBy})` : "";
  const title = `soak: ${options.durationMs / 1000} s, ${summary.restarts.length} kill -9, ${summary.partitions} partitions${how}`;
  const marks = { warmupMs: options.warmupMs, title, ...(base ? { baseRssBytes: base * MiB } : {}) };
  writeFileSync(join(options.outDir, "soak-rss.svg"), renderRssSvg(samples, marks));
}
