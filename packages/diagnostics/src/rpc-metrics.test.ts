import { Dispatcher } from "@omnirelay/core";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { PrometheusRpcMetricsRecorder } from "./rpc-metrics.js";

const metric = (procedure: string, status: "ok" | "not-found" = "ok") =>
  ({ service: "s", procedure, transport: "http", status, durationMs: 12 }) as const;

async function lines(registry: Registry): Promise<string[]> {
  return (await registry.metrics()).split("\n").filter((l) => l.startsWith("omnirelay_http_requests_total{"));
}

describe("PrometheusRpcMetricsRecorder", () => {
  it("labels procedures the dispatcher does not know as _other", async () => {
    const registry = new Registry();
    const dispatcher = new Dispatcher({ service: "s" });
    dispatcher.registerJson("billing::enqueue", async () => ({}));
    const recorder = new PrometheusRpcMetricsRecorder({ registry, dispatcher });
    recorder.record(metric("Billing::Enqueue"));
    recorder.record(metric("secret-tenant-42::enqueue", "not-found"));
    expect(await lines(registry)).toEqual([
      'omnirelay_http_requests_total{procedure="billing::enqueue",transport="http",status="ok"} 1',
      'omnirelay_http_requests_total{procedure="_other",transport="http",status="not-found"} 1',
    ]);
  });

  it("caps the number of distinct procedure labels", async () => {
    const registry = new Registry();
    const recorder = new PrometheusRpcMetricsRecorder({ registry, maxProcedures: 2 });
    for (const name of ["a::x", "b::x", "c::x", "a::x", "d::x"]) recorder.record(metric(name));
    expect(await lines(registry)).toEqual([
      'omnirelay_http_requests_total{procedure="a::x",transport="http",status="ok"} 2',
      'omnirelay_http_requests_total{procedure="b::x",transport="http",status="ok"} 1',
      'omnirelay_http_requests_total{procedure="_other",transport="http",status="ok"} 2',
    ]);
    const text = await registry.metrics();
    expect(text).toContain('omnirelay_http_request_duration_bucket{le="25",procedure="a::x",transport="http"} 2');
  });

  it("refuses a missing registry and a bad cap", () => {
    expect(() => new PrometheusRpcMetricsRecorder({} as never)).toThrow(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "registry" } }),
    );
    expect(() => new PrometheusRpcMetricsRecorder({ registry: new Registry(), maxProcedures: 0 })).toThrow(
      expect.objectContaining({ metadata: { option: "maxProcedures" } }),
    );
  });
});
