import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { eventually, killAll, startDemo, startDispatcher, tempDir } from "./helpers.js";

const deploy = resolve(import.meta.dirname, "../../../deploy");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? files(path) : [path];
  });
}

/** Metric names a PromQL expression mentions (omnirelay_* identifiers). */
function metricsIn(expr: string): string[] {
  return [...expr.matchAll(/\b(omnirelay_[a-z0-9_]+)\b/g)].map((m) => m[1] as string);
}

const dashboard = JSON.parse(
  readFileSync(join(deploy, "grafana/dashboards/resourcelease-mesh-overview.json"), "utf8"),
) as { title: string; uid: string; panels: { title: string; targets: { expr: string }[] }[] };
const alerts = parse(readFileSync(join(deploy, "alerts.yml"), "utf8")) as {
  groups: { rules: { alert: string; expr: string }[] }[];
};

describe("container lab files", () => {
  const dir = tempDir();
  let exposed = new Set<string>();

  beforeAll(async () => {
    // A live scrape of a running demo (with traffic, so every labelled series exists). The worker is slower than the
    // seeder (300 ms per operation, one lease per dispatch key), so the backlog crosses the high watermark within
    // seconds; with 50 ms it kept up, and the backpressure series appeared only when chance built a backlog (33 s once).
    const { httpUrl, rpcUrl } = await startDispatcher(dir.path, ["--high-watermark", "4", "--low-watermark", "1"]);
    startDemo(["--roles", "seeder", "--rpc-url", rpcUrl, "--seeder-interval", "20ms"]);
    startDemo(["--roles", "worker", "--rpc-url", rpcUrl, "--worker-peer-id", "scrape-worker", "--work-ms", "300"]);
    const text = await eventually(async () => {
      const body = await (await fetch(`${httpUrl}/metrics`)).text();
      return (
        /omnirelay_resourcelease_backpressure_transitions_total\{/.test(body) && /_lag_bucket\{/.test(body) && body
      );
    }, 30_000);
    exposed = new Set([...text.matchAll(/^([a-z_:][a-z0-9_:]*)[{ ]/gm)].map((m) => m[1] as string));
  });
  afterAll(async () => {
    await killAll();
    dir.remove();
  });

  it("every YAML and JSON file parses, and compose has the lab's services", () => {
    for (const path of files(deploy)) {
      const text = readFileSync(path, "utf8");
      if (path.endsWith(".json")) expect(() => JSON.parse(text), path).not.toThrow();
      if (path.endsWith(".yml") || path.endsWith(".yaml")) expect(() => parse(text), path).not.toThrow();
    }
    const compose = parse(readFileSync(join(deploy, "docker-compose.yml"), "utf8")) as {
      services: Record<string, { ports?: string[] }>;
    };
    expect(Object.keys(compose.services).sort()).toEqual(
      ["grafana", "mesh-dispatcher", "mesh-seeder", "mesh-worker-a", "mesh-worker-b", "prometheus"].sort(),
    );
    // The lab runs without authentication: nothing is published beyond the host's loopback.
    const published = Object.values(compose.services).flatMap((s) => s.ports ?? []);
    expect(published.length).toBeGreaterThan(0);
    for (const port of published) expect(port).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    const provider = parse(readFileSync(join(deploy, "grafana/provisioning/dashboards/omnirelay.yml"), "utf8")) as {
      providers: { folder: string }[];
    };
    expect(provider.providers[0]?.folder).toBe("OmniRelay");
    expect(dashboard.title).toBe("ResourceLease Mesh Overview");
    expect(readFileSync(join(deploy, "Dockerfile"), "utf8")).toMatch(/FROM node:20-slim/);
  });

  it("every metric a dashboard panel or an alert rule queries exists in a live /metrics scrape", () => {
    const queried = [
      ...dashboard.panels.flatMap((p) => p.targets.map((t) => ({ where: `panel ${p.title}`, expr: t.expr }))),
      ...alerts.groups.flatMap((g) => g.rules.map((r) => ({ where: `alert ${r.alert}`, expr: r.expr }))),
    ];
    expect(queried.length).toBeGreaterThan(10);
    const missing = queried.flatMap((q) =>
      metricsIn(q.expr)
        .filter((m) => !exposed.has(m))
        .map((m) => `${q.where}: ${m}`),
    );
    expect(missing).toEqual([]);
    // The seed's alert catalog: pending depth, replication lag, unhealthy peers, backpressure thrash.
    const rules = alerts.groups.flatMap((g) => g.rules.map((r) => r.expr)).join("\n");
    for (const metric of [
      "omnirelay_resourcelease_pending",
      "omnirelay_resourcelease_replication_lag_bucket",
      "omnirelay_peer_lease_unhealthy",
      "omnirelay_resourcelease_backpressure_transitions_total",
    ]) {
      expect(rules).toContain(metric);
    }
  });
});
