import { describe, expect, it } from "vitest";
import type { Logger } from "../contracts/health.js";
import { BackpressureAwareRateLimiter } from "./backpressure-aware-rate-limiter.js";
import { ConcurrencyLimiter, type RateLimiter } from "./rate-limiters.js";

const limiter = (): RateLimiter => new ConcurrencyLimiter({ permits: 1 });

describe("BackpressureAwareRateLimiter", () => {
  it("requires a normal limiter or a normal selector", () => {
    for (const options of [{}, { backpressureLimiter: limiter() }, { backpressureSelector: () => limiter() }]) {
      expect(() => new BackpressureAwareRateLimiter(options)).toThrow(
        expect.objectContaining({
          status: "invalid-argument",
          code: "resourcelease.options.invalid",
          metadata: { option: "normalLimiter" },
        }),
      );
    }
    expect(() => new BackpressureAwareRateLimiter({ normalLimiter: {} as RateLimiter })).toThrow(
      expect.objectContaining({ metadata: { option: "normalLimiter" } }),
    );
    expect(new BackpressureAwareRateLimiter({ normalSelector: () => undefined }).isBackpressureActive).toBe(false);
  });

  it("uses the normal selector, then the normal limiter, while inactive", () => {
    const normal = limiter();
    const perProcedure = limiter();
    const backpressure = limiter();
    const rl = new BackpressureAwareRateLimiter<string>({
      normalLimiter: normal,
      backpressureLimiter: backpressure,
      normalSelector: (procedure) => (procedure === "enqueue" ? perProcedure : undefined),
    });
    expect(rl.selectLimiter("enqueue")).toBe(perProcedure);
    expect(rl.selectLimiter("lease")).toBe(normal);
  });

  it("uses the backpressure selector, then the backpressure limiter, while active", () => {
    const normal = limiter();
    const shed = limiter();
    const backpressure = limiter();
    const rl = new BackpressureAwareRateLimiter<string>({
      normalLimiter: normal,
      backpressureLimiter: backpressure,
      backpressureSelector: (procedure) => (procedure === "enqueue" ? shed : undefined),
    });
    expect(rl.setBackpressure(true)).toBe(true);
    expect(rl.isBackpressureActive).toBe(true);
    expect(rl.selectLimiter("enqueue")).toBe(shed);
    expect(rl.selectLimiter("complete")).toBe(backpressure);
    expect(rl.setBackpressure(false)).toBe(true);
    expect(rl.selectLimiter("enqueue")).toBe(normal);
  });

  it("falls back to the normal path while active when no backpressure limiter applies", () => {
    const normal = limiter();
    const special = limiter();
    const rl = new BackpressureAwareRateLimiter<string>({
      normalLimiter: normal,
      normalSelector: (m) => (m === "special" ? special : undefined),
      backpressureSelector: () => undefined,
    });
    rl.setBackpressure(true);
    expect(rl.selectLimiter("x")).toBe(normal);
    expect(rl.selectLimiter("special")).toBe(special);
  });

  it("reports whether setBackpressure changed the state", () => {
    const rl = new BackpressureAwareRateLimiter({ normalLimiter: limiter() });
    expect(rl.setBackpressure(false)).toBe(false);
    expect(rl.setBackpressure(true)).toBe(true);
    expect(rl.setBackpressure(true)).toBe(false);
    expect(rl.setBackpressure(false)).toBe(true);
  });

  it("treats a throwing selector as no choice and logs it", () => {
    const errors: unknown[] = [];
    const logger: Logger = { debug() {}, info() {}, warn() {}, error: (obj) => void errors.push(obj) };
    const normal = limiter();
    const rl = new BackpressureAwareRateLimiter({
      normalLimiter: normal,
      normalSelector: () => {
        throw new Error("bad selector");
      },
      logger,
    });
    expect(rl.selectLimiter(undefined)).toBe(normal);
    expect(errors).toHaveLength(1);
  });
});
