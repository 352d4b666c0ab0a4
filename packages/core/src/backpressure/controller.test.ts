import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import type { Logger, ResourceLeaseBackpressureSignal } from "../contracts/health.js";
import { isOmniRelayError, OmniRelayError } from "../errors/omnirelay-error.js";
import { FakeClock } from "../testing/fake-clock.js";
import { ResourceLeaseBackpressureController, type ResourceLeaseBackpressureControllerOptions } from "./controller.js";

interface LogLine {
  level: "debug" | "info" | "warn" | "error";
  obj: object | string;
  msg: string | undefined;
}

function recordingLogger(): Logger & { lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: LogLine["level"]) =>
    (obj: object | string, msg?: string): void => {
      lines.push({ level, obj, msg });
    };
  return { lines, debug: at("debug"), info: at("info"), warn: at("warn"), error: at("error") };
}

/** A queue stand-in: `pending` is what pendingCount() reads; `set` changes it and tells the controller. */
function setup(options: Partial<ResourceLeaseBackpressureControllerOptions> = {}) {
  const clock = new FakeClock();
  const state = { pending: 0 };
  const signals: ResourceLeaseBackpressureSignal[] = [];
  const controller = new ResourceLeaseBackpressureController({
    highWatermark: 10,
    lowWatermark: 5,
    cooldownMs: 5000,
    clock,
    pendingCount: () => state.pending,
    listeners: [{ onBackpressureChanged: (s) => void signals.push(s) }],
    ...options,
  });
  const set = (pending: number): void => {
    state.pending = pending;
    controller.observe(pending);
  };
  return { clock, state, signals, controller, set };
}

function expectOptionError(fn: () => unknown, option: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(isOmniRelayError(caught)).toBe(true);
  expect(caught).toMatchObject({
    status: "invalid-argument",
    code: "resourcelease.options.invalid",
    metadata: { option },
  });
}

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe("ResourceLeaseBackpressureController construction", () => {
  const pendingCount = (): number => 0;

  it("rejects a missing, zero, negative or fractional high watermark instead of gating every enqueue", () => {
    expectOptionError(
      () => new ResourceLeaseBackpressureController({ pendingCount } as ResourceLeaseBackpressureControllerOptions),
      "highWatermark",
    );
    for (const highWatermark of [0, -1, 2.5, Number.NaN]) {
      expectOptionError(
        () => new ResourceLeaseBackpressureController({ highWatermark, pendingCount }),
        "highWatermark",
      );
    }
  });

  it("rejects a low watermark at or above the high one, or negative", () => {
    expectOptionError(
      () => new ResourceLeaseBackpressureController({ highWatermark: 10, lowWatermark: 10, pendingCount }),
      "lowWatermark",
    );
    expectOptionError(
      () => new ResourceLeaseBackpressureController({ highWatermark: 10, lowWatermark: 11, pendingCount }),
      "lowWatermark",
    );
    expectOptionError(
      () => new ResourceLeaseBackpressureController({ highWatermark: 10, lowWatermark: -1, pendingCount }),
      "lowWatermark",
    );
  });

  it("rejects a negative cooldown, a missing pendingCount and a malformed listener", () => {
    expectOptionError(
      () => new ResourceLeaseBackpressureController({ highWatermark: 10, cooldownMs: -1, pendingCount }),
      "cooldownMs",
    );
    expectOptionError(
      () =>
        new ResourceLeaseBackpressureController({ highWatermark: 10 } as ResourceLeaseBackpressureControllerOptions),
      "pendingCount",
    );
    expectOptionError(
      () =>
        new ResourceLeaseBackpressureController({
          highWatermark: 10,
          pendingCount,
          listeners: [{} as never],
        }),
      "listeners",
    );
  });

  it("defaults low to floor(high / 2) and the cooldown to 5 s", () => {
    const a = new ResourceLeaseBackpressureController({ highWatermark: 5, pendingCount });
    expect(a.lowWatermark).toBe(2);
    expect(a.cooldownMs).toBe(5000);
    expect(new ResourceLeaseBackpressureController({ highWatermark: 1, pendingCount }).lowWatermark).toBe(0);
  });
});

describe("ResourceLeaseBackpressureController hysteresis", () => {
  it("activates at the high watermark, clears at the low one and keeps its state in between", () => {
    const { controller, set, signals } = setup({ cooldownMs: 0 });
    for (const n of [1, 5, 9]) set(n);
    expect(controller.isActive).toBe(false);
    set(10);
    expect(controller.isActive).toBe(true);
    for (const n of [9, 6, 8, 6, 9]) set(n);
    expect(controller.isActive).toBe(true);
    set(5);
    expect(controller.isActive).toBe(false);
    for (const n of [6, 9, 7, 9]) set(n);
    expect(controller.isActive).toBe(false);
    expect(controller.transitions).toBe(2);
    expect(signals.map((s) => [s.isActive, s.pendingCount])).toEqual([
      [true, 10],
      [false, 5],
    ]);
    expect(signals[0]).toMatchObject({ highWatermark: 10, lowWatermark: 5 });
  });

  it("allows the first transition at once even with a long cooldown", () => {
    const { controller, set, clock } = setup({ cooldownMs: 60_000 });
    set(12);
    expect(controller.isActive).toBe(true);
    expect(controller.latest).toMatchObject({ isActive: true, pendingCount: 12, observedAt: clock.now() });
  });

  it("rejects an invalid pending count with a coded error", () => {
    const { controller } = setup();
    expect(() => controller.observe(-1)).toThrow(
      expect.objectContaining({ code: "resourcelease.argument.invalid", status: "invalid-argument" }),
    );
  });
});

describe("ResourceLeaseBackpressureController cooldown", () => {
  it("does not stick closed when workers drain the queue inside the cooldown and nothing calls again", async () => {
    const { controller, set, clock, signals } = setup();
    const t0 = clock.now();
    set(10);
    expect(controller.isActive).toBe(true);

    let released = false;
    const enqueuer = controller.waitUntilInactive().then(() => {
      released = true;
    });

    // Workers drain to zero within the cooldown: every evaluation is refused.
    clock.advance(1000);
    for (const n of [8, 4, 1, 0]) set(n);
    expect(controller.isActive).toBe(true);
    expect(clock.pendingTimers).toBe(1);

    // From here on nobody calls observe(): workers block on an empty queue.
    clock.advance(3999);
    await flush();
    expect(released).toBe(false);

    clock.advance(1);
    await enqueuer;
    expect(released).toBe(true);
    expect(controller.isActive).toBe(false);
    expect(signals.at(-1)).toMatchObject({ isActive: false, pendingCount: 0, observedAt: t0 + 5000 });
    expect(clock.pendingTimers).toBe(0);
  });

  it("re-evaluates with the pending count read when the timer fires", () => {
    const { controller, set, clock, state } = setup();
    set(10);
    clock.advance(100);
    set(2);
    // The queue refilled without telling the controller; the deferred check sees the current count.
    state.pending = 11;
    clock.advance(5000);
    expect(controller.isActive).toBe(true);
    expect(controller.transitions).toBe(1);
  });

  it("defers a re-activation inside the cooldown and applies it when the cooldown ends", () => {
    const { controller, set, clock, signals } = setup();
    set(10);
    clock.advance(5000);
    set(3);
    expect(controller.isActive).toBe(false);
    clock.advance(10);
    set(15);
    expect(controller.isActive).toBe(false);
    clock.advance(4990);
    expect(controller.isActive).toBe(true);
    expect(signals.map((s) => s.isActive)).toEqual([true, false, true]);
  });

  it("drops the deferred check when the pending count moves back into the band", () => {
    const { controller, set, clock } = setup();
    set(10);
    set(0);
    expect(clock.pendingTimers).toBe(1);
    set(7);
    expect(clock.pendingTimers).toBe(0);
    clock.advance(10_000);
    expect(controller.isActive).toBe(true);
  });

  it("logs and survives a pendingCount() that throws when the timer fires", () => {
    const logger = recordingLogger();
    const { controller, set, clock } = setup({
      logger,
      pendingCount: () => {
        throw new Error("boom");
      },
    });
    set(10);
    set(0);
    expect(() => clock.advance(5000)).not.toThrow();
    expect(controller.isActive).toBe(true);
    expect(logger.lines.filter((l) => l.level === "error")).toHaveLength(1);
  });

  it("clears in real time once the cooldown ends, with no further calls", async () => {
    let pending = 0;
    const controller = new ResourceLeaseBackpressureController({
      highWatermark: 4,
      cooldownMs: 50,
      pendingCount: () => pending,
    });
    pending = 4;
    controller.observe(pending);
    const started = performance.now();
    pending = 0;
    controller.observe(pending);
    expect(controller.isActive).toBe(true);
    await controller.waitUntilInactive();
    expect(performance.now() - started).toBeGreaterThanOrEqual(45);
    expect(controller.isActive).toBe(false);
    controller.close();
  }, 1000);

  it("hints a retry after the rest of the cooldown, never below the floor", () => {
    const { controller, set, clock } = setup();
    expect(controller.retryAfterMs()).toBe(0);
    set(10);
    expect(controller.retryAfterMs()).toBe(5000);
    clock.advance(2000);
    expect(controller.retryAfterMs()).toBe(3000);
    clock.advance(2950);
    expect(controller.retryAfterMs()).toBe(100);
    clock.advance(10_000);
    expect(controller.retryAfterMs()).toBe(100);
  });
});

describe("ResourceLeaseBackpressureController listeners", () => {
  it("tells every listener in order, even when one throws or rejects, and never throws to the caller", async () => {
    const logger = recordingLogger();
    const calls: string[] = [];
    const { controller, set } = setup({
      cooldownMs: 0,
      logger,
      listeners: [
        { onBackpressureChanged: (s) => void calls.push(`a:${s.isActive}`) },
        {
          onBackpressureChanged: () => {
            calls.push("throws");
            throw new Error("listener exploded");
          },
        },
        {
          onBackpressureChanged: async () => {
            calls.push("rejects");
            throw new Error("listener rejected");
          },
        },
        { onBackpressureChanged: (s) => void calls.push(`b:${s.isActive}`) },
      ],
    });
    const remove = controller.addListener({ onBackpressureChanged: (s) => void calls.push(`c:${s.isActive}`) });

    expect(() => set(10)).not.toThrow();
    expect(calls).toEqual(["a:true", "throws", "rejects", "b:true", "c:true"]);
    await flush();
    expect(logger.lines.filter((l) => l.level === "error")).toHaveLength(2);

    remove();
    remove();
    calls.length = 0;
    set(0);
    expect(calls).toEqual(["a:false", "throws", "rejects", "b:false"]);
    await flush();
  });

  it("delivers transitions in order when a listener re-enters observe()", () => {
    const seen: boolean[][] = [[], []];
    const holder: { controller?: ResourceLeaseBackpressureController } = {};
    const { controller } = setup({
      cooldownMs: 0,
      listeners: [
        {
          onBackpressureChanged: (s) => {
            seen[0]?.push(s.isActive);
            if (s.isActive) holder.controller?.observe(0);
          },
        },
        { onBackpressureChanged: (s) => void seen[1]?.push(s.isActive) },
      ],
    });
    holder.controller = controller;
    controller.observe(10);
    expect(seen).toEqual([
      [true, false],
      [true, false],
    ]);
    expect(controller.isActive).toBe(false);
  });
});

describe("ResourceLeaseBackpressureController.waitUntilInactive", () => {
  it("resolves at once while inactive", async () => {
    const { controller } = setup();
    await expect(controller.waitUntilInactive()).resolves.toBeUndefined();
  });

  it("resolves on deactivation and removes its abort listener", async () => {
    const { controller, set, clock } = setup();
    set(10);
    const ac = new AbortController();
    const wait = controller.waitUntilInactive({ signal: ac.signal });
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(1);
    clock.advance(5000);
    set(5);
    await wait;
    expect(getEventListeners(ac.signal, "abort")).toHaveLength(0);
  });

  it("rejects with resourcelease.cancelled when the signal aborts", async () => {
    const { controller, set } = setup();
    set(10);
    const ac = new AbortController();
    const wait = controller.waitUntilInactive({ signal: ac.signal });
    ac.abort();
    await expect(wait).rejects.toMatchObject({ status: "cancelled", code: "resourcelease.cancelled" });
    await expect(controller.waitUntilInactive({ signal: ac.signal })).rejects.toMatchObject({
      code: "resourcelease.cancelled",
    });
  });

  it("rejects with resourcelease.deadline_exceeded on a timeout signal, and passes an OmniRelayError reason on", async () => {
    const { controller, set } = setup();
    set(10);
    await expect(controller.waitUntilInactive({ signal: AbortSignal.timeout(20) })).rejects.toMatchObject({
      status: "deadline-exceeded",
      code: "resourcelease.deadline_exceeded",
    });
    const ac = new AbortController();
    const reason = new OmniRelayError({ status: "unavailable", code: "resourcelease.draining", message: "draining" });
    const wait = controller.waitUntilInactive({ signal: ac.signal });
    ac.abort(reason);
    await expect(wait).rejects.toBe(reason);
  });

  it("close() stops the timer, rejects waiters with resourcelease.queue.closed and ignores later observations", async () => {
    const { controller, set, clock } = setup();
    set(10);
    set(0);
    expect(clock.pendingTimers).toBe(1);
    const wait = controller.waitUntilInactive();
    controller[Symbol.dispose]();
    expect(clock.pendingTimers).toBe(0);
    await expect(wait).rejects.toMatchObject({ status: "unavailable", code: "resourcelease.queue.closed" });
    clock.advance(10_000);
    set(0);
    expect(controller.isActive).toBe(true);
    expect(controller.transitions).toBe(1);
  });
});
