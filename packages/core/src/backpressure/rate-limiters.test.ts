import { describe, expect, it } from "vitest";
import { FakeClock } from "../testing/fake-clock.js";
import { ConcurrencyLimiter, TokenBucketLimiter } from "./rate-limiters.js";

describe("ConcurrencyLimiter", () => {
  it("grants at most `permits` at once and frees one per release", () => {
    const limiter = new ConcurrencyLimiter({ permits: 2 });
    const a = limiter.tryAcquire();
    const b = limiter.tryAcquire();
    expect(a).toBeDefined();
    expect(b).toBeDefined();
    expect(limiter.tryAcquire()).toBeUndefined();
    a?.release();
    expect(limiter.available).toBe(1);
    expect(limiter.tryAcquire()).toBeDefined();
    expect(limiter.tryAcquire()).toBeUndefined();
  });

  it("ignores a second release of the same permit", () => {
    const limiter = new ConcurrencyLimiter({ permits: 1 });
    const permit = limiter.tryAcquire();
    permit?.release();
    permit?.release();
    expect(limiter.available).toBe(1);
    expect(limiter.tryAcquire()).toBeDefined();
    expect(limiter.tryAcquire()).toBeUndefined();
  });

  it("refuses everything with zero permits and rejects invalid counts", () => {
    expect(new ConcurrencyLimiter({ permits: 0 }).tryAcquire()).toBeUndefined();
    for (const permits of [-1, 1.5, Number.NaN]) {
      expect(() => new ConcurrencyLimiter({ permits })).toThrow(
        expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "permits" } }),
      );
    }
  });
});

describe("TokenBucketLimiter", () => {
  it("starts full, refills at the configured rate and never holds more than `burst`", () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ tokensPerSecond: 2, burst: 3, clock });
    for (let i = 0; i < 3; i++) expect(limiter.tryAcquire()).toBeDefined();
    expect(limiter.tryAcquire()).toBeUndefined();
    clock.advance(499);
    expect(limiter.tryAcquire()).toBeUndefined();
    clock.advance(1);
    expect(limiter.tryAcquire()).toBeDefined();
    expect(limiter.tryAcquire()).toBeUndefined();
    clock.advance(60_000);
    expect(limiter.availableTokens).toBe(3);
    for (let i = 0; i < 3; i++) expect(limiter.tryAcquire()).toBeDefined();
    expect(limiter.tryAcquire()).toBeUndefined();
  });

  it("does not give a token back on release", () => {
    const clock = new FakeClock();
    const limiter = new TokenBucketLimiter({ tokensPerSecond: 1, burst: 1, clock });
    limiter.tryAcquire()?.release();
    expect(limiter.tryAcquire()).toBeUndefined();
    expect(clock.pendingTimers).toBe(0);
  });

  it("refills in real time", async () => {
    const limiter = new TokenBucketLimiter({ tokensPerSecond: 100, burst: 1 });
    expect(limiter.tryAcquire()).toBeDefined();
    expect(limiter.tryAcquire()).toBeUndefined();
    // No event marks a refill: the bucket is computed from elapsed time, so waiting is the test.
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(limiter.tryAcquire()).toBeDefined();
  });

  it("rejects a non-positive rate or burst", () => {
    expect(() => new TokenBucketLimiter({ tokensPerSecond: 0, burst: 1 })).toThrow(
      expect.objectContaining({ metadata: { option: "tokensPerSecond" } }),
    );
    expect(() => new TokenBucketLimiter({ tokensPerSecond: 1, burst: 0 })).toThrow(
      expect.objectContaining({ metadata: { option: "burst" } }),
    );
  });
});
