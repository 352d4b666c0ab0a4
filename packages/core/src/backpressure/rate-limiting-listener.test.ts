import { describe, expect, it } from "vitest";
import type { Logger, ResourceLeaseBackpressureSignal } from "../contracts/health.js";
import { FakeClock } from "../testing/fake-clock.js";
import { BackpressureAwareRateLimiter } from "./backpressure-aware-rate-limiter.js";
import { ResourceLeaseBackpressureController } from "./controller.js";
import { ConcurrencyLimiter } from "./rate-limiters.js";
import { RateLimitingBackpressureListener } from "./rate-limiting-listener.js";

interface Line {
  level: string;
  obj: object | string;
  msg: string | undefined;
}

function recordingLogger(): Logger & { lines: Line[] } {
  const lines: Line[] = [];
  const at = (level: string) => (obj: object | string, msg?: string) => void lines.push({ level, obj, msg });
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

const signal = (isActive: boolean, pendingCount: number): ResourceLeaseBackpressureSignal => ({
  isActive,
  pendingCount,
  observedAt: 0,
  highWatermark: 10,
  lowWatermark: 5,
});

describe("RateLimitingBackpressureListener", () => {
  it("switches the limiter on controller transitions and logs each change", () => {
    const normal = new ConcurrencyLimiter({ permits: 100 });
    const strict = new ConcurrencyLimiter({ permits: 0 });
    const limiter = new BackpressureAwareRateLimiter({ normalLimiter: normal, backpressureLimiter: strict });
    const logger = recordingLogger();
    const clock = new FakeClock();
    const controller = new ResourceLeaseBackpressureController({
      highWatermark: 10,
      cooldownMs: 0,
      clock,
      pendingCount: () => 0,
      listeners: [new RateLimitingBackpressureListener(limiter, { logger })],
    });

    controller.observe(12);
    expect(limiter.isBackpressureActive).toBe(true);
    expect(limiter.selectLimiter(undefined)?.tryAcquire()).toBeUndefined();
    controller.observe(3);
    expect(limiter.isBackpressureActive).toBe(false);
    expect(limiter.selectLimiter(undefined)?.tryAcquire()).toBeDefined();

    expect(logger.lines.map((l) => [l.level, l.msg])).toEqual([
      ["warn", "Resource lease backpressure activated: 12 pending (high watermark 10)."],
      ["info", "Resource lease backpressure cleared at 3 pending items."],
    ]);
    expect(logger.lines[0]?.obj).toMatchObject({ eventId: 1, pendingCount: 12, highWatermark: 10 });
    expect(logger.lines[1]?.obj).toMatchObject({ eventId: 2, pendingCount: 3 });
  });

  it("logs only when the limiter's state actually changed", () => {
    const limiter = new BackpressureAwareRateLimiter({ normalLimiter: new ConcurrencyLimiter({ permits: 1 }) });
    const logger = recordingLogger();
    const listener = new RateLimitingBackpressureListener(limiter, { logger });
    listener.onBackpressureChanged(signal(true, 10));
    listener.onBackpressureChanged(signal(true, 11));
    expect(logger.lines).toHaveLength(1);
    listener.onBackpressureChanged(signal(false, 4));
    listener.onBackpressureChanged(signal(false, 2));
    expect(logger.lines).toHaveLength(2);

    limiter.setBackpressure(true);
    listener.onBackpressureChanged(signal(true, 20));
    expect(logger.lines).toHaveLength(2);
  });

  it("rejects something that is not a BackpressureAwareRateLimiter", () => {
    expect(() => new RateLimitingBackpressureListener({} as never)).toThrow(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "limiter" } }),
    );
  });
});
