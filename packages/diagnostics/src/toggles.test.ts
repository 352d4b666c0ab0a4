import { describe, expect, it, vi } from "vitest";
import { RuntimeToggles } from "./toggles.js";

describe("RuntimeToggles", () => {
  it("changes the level, tells listeners once per change, and survives a throwing listener", () => {
    const errors: unknown[] = [];
    const logger = { debug() {}, info() {}, warn() {}, error: (o: unknown) => errors.push(o) };
    const toggles = new RuntimeToggles({ logger });
    const seen: string[] = [];
    toggles.onLoggingChange(() => {
      throw new Error("boom");
    });
    const off = toggles.onLoggingChange((s) => seen.push(s.level));
    expect(toggles.setLogging({ level: "DEBUG" })).toEqual({ level: "debug" });
    toggles.setLogging({ level: "debug" });
    off();
    toggles.setLogging({ level: "warn" });
    expect(seen).toEqual(["debug"]);
    expect(errors).toHaveLength(2);
  });

  it("rejects unknown levels and out-of-range probabilities with codes naming the field", () => {
    const toggles = new RuntimeToggles();
    expect(() => toggles.setLogging({ level: "verbose" })).toThrow(
      expect.objectContaining({ status: "invalid-argument", code: "omnirelay.control.logging.level_invalid" }),
    );
    expect(() => toggles.setTracing({ samplingProbability: 1.5 })).toThrow(
      expect.objectContaining({
        code: "omnirelay.control.tracing.invalid",
        metadata: { field: "samplingProbability" },
      }),
    );
    expect(() => toggles.setTracing({ enabled: "yes" })).toThrow(
      expect.objectContaining({ metadata: { field: "enabled" } }),
    );
    expect(() => toggles.setTracing({})).toThrow(
      expect.objectContaining({ code: "omnirelay.control.tracing.invalid" }),
    );
    expect(toggles.tracing).toEqual({ enabled: true, samplingProbability: 1 });
  });

  it("merges partial tracing updates and contains async listener rejections", async () => {
    const error = vi.fn();
    const toggles = new RuntimeToggles({ logger: { debug() {}, info() {}, warn() {}, error } });
    toggles.onTracingChange(async () => {
      throw new Error("async boom");
    });
    expect(toggles.setTracing({ samplingProbability: 0.25 })).toEqual({ enabled: true, samplingProbability: 0.25 });
    expect(toggles.setTracing({ enabled: false })).toEqual({ enabled: false, samplingProbability: 0.25 });
    await vi.waitFor(() => expect(error).toHaveBeenCalledTimes(2));
  });

  it("validates its initial values", () => {
    expect(() => new RuntimeToggles({ logLevel: "loud" as never })).toThrow(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "logLevel" } }),
    );
  });
});
