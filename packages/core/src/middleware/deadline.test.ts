import { describe, expect, it } from "vitest";
import { Dispatcher } from "../dispatcher/dispatcher.js";
import type { RequestMeta, UnaryResponse } from "../dispatcher/types.js";
import { FakeClock } from "../testing/fake-clock.js";
import { DeadlineMiddleware, type DeadlineMiddlewareOptions } from "./deadline.js";
import { maxDeadlineHorizonMs } from "./deadline-headers.js";
import { deferred, makeRequest, recordingDispatcher, registerRaw, responseJson } from "./test-helpers.js";

const ok: UnaryResponse = { message: {} };

/** A dispatcher whose one procedure blocks until the test settles `gate`, recording the meta it got. */
function blocking(options: DeadlineMiddlewareOptions) {
  const middleware = new DeadlineMiddleware(options);
  const dispatcher = new Dispatcher({ service: "test-svc", inboundMiddleware: [middleware] });
  const gate = deferred<UnaryResponse>();
  const started = deferred<RequestMeta>();
  registerRaw(dispatcher, "resourcelease::lease", async (request) => {
    started.resolve(request.meta);
    return gate.promise;
  });
  return { middleware, dispatcher, gate, started };
}

describe("DeadlineMiddleware", () => {
  it("caps the caller's deadline at maxTimeoutMs and applies defaultTimeoutMs when there is none", async () => {
    const clock = new FakeClock();
    const now = clock.now();
    const { dispatcher, seen } = recordingDispatcher([
      new DeadlineMiddleware({ defaultTimeoutMs: 500, maxTimeoutMs: 1000, clock }),
    ]);
    await dispatcher.dispatch(makeRequest({ deadline: now + 10_000 }));
    await dispatcher.dispatch(makeRequest({ deadline: now + 700 }));
    await dispatcher.dispatch(makeRequest());
    expect(seen.map((m) => m.deadline)).toEqual([now + 1000, now + 700, now + 500]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("uses maxTimeoutMs for calls without a deadline, and adds none when unconfigured", async () => {
    const clock = new FakeClock();
    const capped = recordingDispatcher([new DeadlineMiddleware({ maxTimeoutMs: 250, clock })]);
    await capped.dispatcher.dispatch(makeRequest());
    expect(capped.seen[0]?.deadline).toBe(clock.now() + 250);
    const open = new DeadlineMiddleware({ clock });
    const plain = recordingDispatcher([open]);
    await plain.dispatcher.dispatch(makeRequest());
    expect(plain.seen[0]?.deadline).toBeUndefined();
    expect(open.activeCalls).toBe(0);
  });

  it("fails a call whose deadline has already passed without running it", async () => {
    const clock = new FakeClock();
    const { dispatcher, seen } = recordingDispatcher([new DeadlineMiddleware({ clock })]);
    await expect(dispatcher.dispatch(makeRequest({ deadline: clock.now() }))).rejects.toMatchObject({
      status: "deadline-exceeded",
      code: "omnirelay.deadline_exceeded",
      metadata: { procedure: "resourcelease::stats" },
    });
    expect(seen).toHaveLength(0);
  });

  it("aborts the handler's signal and fails the call when the deadline passes", async () => {
    const clock = new FakeClock();
    const { dispatcher, gate, started, middleware } = blocking({ maxTimeoutMs: 1000, clock });
    const call = dispatcher.dispatch(makeRequest({ procedure: "resourcelease::lease" }));
    const meta = await started.promise;
    expect(meta.signal.aborted).toBe(false);
    clock.advance(999);
    expect(meta.signal.aborted).toBe(false);
    clock.advance(1);
    const error = await call.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ status: "deadline-exceeded", code: "omnirelay.deadline_exceeded" });
    expect(meta.signal.aborted).toBe(true);
    expect(meta.signal.reason).toBe(error);
    expect(middleware.activeCalls).toBe(0);
    // The handler finishing late changes nothing and leaves no unhandled rejection.
    gate.reject(new Error("late"));
  });

  it("clears the timer as soon as the handler settles", async () => {
    const clock = new FakeClock();
    const { dispatcher, gate, started, middleware } = blocking({ defaultTimeoutMs: 60_000, clock });
    const call = dispatcher.dispatch(makeRequest({ procedure: "resourcelease::lease" }));
    await started.promise;
    expect(clock.pendingTimers).toBe(1);
    gate.resolve(ok);
    await expect(call).resolves.toEqual(ok);
    expect(clock.pendingTimers).toBe(0);
    expect(middleware.activeCalls).toBe(0);
  });

  it("still passes the caller's own cancellation through", async () => {
    const clock = new FakeClock();
    const { dispatcher, gate, started } = blocking({ defaultTimeoutMs: 60_000, clock });
    const caller = new AbortController();
    const call = dispatcher.dispatch(makeRequest({ procedure: "resourcelease::lease", signal: caller.signal }));
    const meta = await started.promise;
    caller.abort(new Error("client went away"));
    expect(meta.signal.aborted).toBe(true);
    gate.reject(meta.signal.reason);
    await expect(call).rejects.toMatchObject({ status: "cancelled", code: "omnirelay.cancelled" });
    expect(clock.pendingTimers).toBe(0);
  });

  it("close() cancels calls in flight, clears their timers and refuses new calls", async () => {
    const clock = new FakeClock();
    const { dispatcher, started, middleware } = blocking({ defaultTimeoutMs: 60_000, clock });
    const call = dispatcher.dispatch(makeRequest({ procedure: "resourcelease::lease" }));
    const meta = await started.promise;
    middleware[Symbol.dispose]();
    await expect(call).rejects.toMatchObject({ status: "cancelled", code: "omnirelay.cancelled" });
    expect(meta.signal.aborted).toBe(true);
    expect(clock.pendingTimers).toBe(0);
    await expect(dispatcher.dispatch(makeRequest({ procedure: "resourcelease::lease" }))).rejects.toMatchObject({
      status: "unavailable",
      code: "omnirelay.inbound.shutting_down",
    });
  });

  it("enforces a real deadline on a handler that waits for its signal", async () => {
    const dispatcher = new Dispatcher({
      service: "test-svc",
      inboundMiddleware: [new DeadlineMiddleware({ maxTimeoutMs: 40 })],
    });
    registerRaw(
      dispatcher,
      "resourcelease::lease",
      (request) =>
        new Promise((_resolve, reject) => {
          request.meta.signal.addEventListener("abort", () => reject(request.meta.signal.reason), { once: true });
        }),
    );
    const started = Date.now();
    await expect(dispatcher.dispatch(makeRequest({ procedure: "resourcelease::lease" }))).rejects.toMatchObject({
      code: "omnirelay.deadline_exceeded",
    });
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(35);
    expect(elapsed).toBeLessThan(300);
  });

  it("treats a deadline past the horizon as the horizon, on a real clock too (a Node timer that long fires at once)", async () => {
    const clock = new FakeClock();
    const { dispatcher, seen } = recordingDispatcher([new DeadlineMiddleware({ clock })]);
    await dispatcher.dispatch(makeRequest({ deadline: clock.now() + 100 * 86_400_000 }));
    expect(seen[0]?.deadline).toBe(clock.now() + maxDeadlineHorizonMs);

    const real = new Dispatcher({ service: "test-svc", inboundMiddleware: [new DeadlineMiddleware()] });
    real.registerJson("resourcelease::lease", async () => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      return { ok: true };
    });
    const response = await real.dispatch(
      makeRequest({ procedure: "resourcelease::lease", deadline: Date.now() + 100 * 86_400_000 }),
    );
    expect(responseJson(response)).toEqual({ ok: true });
  });

  it("validates its options", () => {
    expect(() => new DeadlineMiddleware({ maxTimeoutMs: 0 })).toThrow(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "maxTimeoutMs" } }),
    );
    expect(() => new DeadlineMiddleware({ defaultTimeoutMs: 2000, maxTimeoutMs: 1000 })).toThrow(
      expect.objectContaining({ metadata: { option: "defaultTimeoutMs" } }),
    );
  });
});
