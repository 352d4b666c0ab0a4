// Summarises a V8 CPU profile (`node --cpu-prof` writes CPU.*.cpuprofile): the functions with the most self time.
// Usage: node bench/cpuprofile-top.mjs <file.cpuprofile> [top=20]
import { readFileSync } from "node:fs";

const [file, top = "20"] = process.argv.slice(2);
const profile = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
const deltas = profile.timeDeltas;
let total = 0;
for (let i = 0; i < profile.samples.length; i++) {
  const node = byId.get(profile.samples[i]);
  const dt = deltas[i] ?? 0;
  total += dt;
  const { functionName, url, lineNumber } = node.callFrame;
  const where = url ? `${url.split("/").slice(-2).join("/")}:${lineNumber + 1}` : "";
  const key = `${functionName || "(anonymous)"} ${where}`.trim();
  self.set(key, (self.get(key) ?? 0) + dt);
}
const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, Number(top));
console.log(`total ${(total / 1000).toFixed(0)} ms`);
for (const [key, us] of rows) {
  console.log(`${((100 * us) / total).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`);
}
