import { getEventListeners } from "node:events";
import { describe, expect, it } from "vitest";
import { composeInbound, Dispatcher, type DispatcherDeadlineOptions } from "../dispatcher/dispatcher.js";
import type { RequestMeta, UnaryResponse } from "../dispatcher/types.js";
import { FakeClock } from "../testing/fake-clock.js";
import type { Clock } from "../util/clock.js";
import { callAbort } from "../util/signals.js";
import { DeadlineMiddleware } from "./deadline.js";
import { maxDeadlineHorizonMs } from "./deadline-headers.js";
import { deferred, makeRequest, registerRaw, responseJson } from "./test-helpers.js";

const ok: UnaryResponse = { message: {} };

/** A dispatcher enforcing `deadlines` on `clock`, whose procedure records the meta it saw. */
function recordingDispatcher(deadlines: DispatcherDeadlineOptions & { clock?: Clock }) {
  const { clock, ...rules } = deadlines;
  const seen: RequestMeta[] = [];
  const dispatcher = new Dispatcher({ service: "test-svc", deadlines: rules, ...(clock ? { clock } : {}) });
  dispatcher.registerJson("resourcelease::stats", async (_body, meta) => {
    seen.push(meta);
    return { deadline: meta.deadline };
  });
  return { dispatcher, seen };
}

/** A dispatcher whose one procedure blocks until the test settles `gate`, recording the meta it got. */
function blocking(deadlines: DispatcherDeadlineOptions & { clock: Clock }) {
  const { clock, ...rules } = deadlines;
  const dispatcher = new Dispatcher({ service: "test-svc", deadlines: rules, clock });
  const gate = deferred<UnaryResponse>();
  const started = deferred<RequestMeta>();
  registerRaw(dispatcher, "resourcelease::lease", async (request) => {
    started.resolve(request.meta);
    return gate.promise;
  });
  return { dispatcher, gate, started };
}

describe("deadlines, enforced by the dispatcher", () => {
  it("caps the caller's deadline at maxTimeoutMs and applies defaultTimeoutMs when there is none", async () => {
    const clock = new FakeClock();
    const now = clock.now();
    const { dispatcher, seen } = recordingDispatcher({ defaultTimeoutMs: 500, maxTimeoutMs: 1000, clock });
    await dispatcher.dispatch(makeRequest({ deadline: now + 10_000 }));
    await dispatcher.dispatch(makeRequest({ deadline: now + 700 }));
    await dispatcher.dispatch(makeRequest());
    expect(seen.map((m) => m.deadline)).toEqual([now + 1000, now + 700, now + 500]);
    expect(clock.pendingTimers).toBe(0);
  });

  it("uses maxTimeoutMs for calls without a deadline, and adds none when unconfigured", async () => {
    const clock = new FakeClock();
    const capped = recordingDispatcher({ maxTimeoutMs: 250, clock });
    await capped.dispatcher.dispatch(makeRequest());
    expect(capped.seen[0]?.deadline).toBe(clock.now() + 250);
    const plain = recordingDispatcher({ clock });
    await plain.dispatcher.dispatch(makeRequest());
    expect(plain.seen[0]?.deadline).toBeUndefined();
    expect(clock.pendingTimers).toBe(0);
  });

  it("fails a call whose deadline has already passed without running it", async () => {
    const clock = new FakeClock();
    const { dispatcher, seen } = recordingDispatcher({ clock });
    await expect(dispatcher.dispatch(makeRequest({ deadline: clock.now() }))).rejects.toMatchObject({
      status: "deadline-exceeded",
      code: "omnirelay.deadline_exceeded",
      metadata: { procedure: "resourcelease::stats", outcome: "not_run" },
    });
    expect(seen).toHaveLength(0);
  });

  it("aborts the handler's signal and fails the call when the deadline passes", async () => {
    const clock = new FakeClock();
    const { dispatcher, gate, started } = blocking({ maxTimeoutMs: 1000, clock });
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
    // It was running: what it did may still take effect, and the answer says so.
    expect(error).toMatchObject({
      status: "deadline-exceeded",
      code: "omnirelay.deadline_exceeded",
      metadata: { procedure: "resourcelease::lease", outcome: "unknown" },
    });
    expect(meta.signal.aborted).toBe(true);
    expect(meta.signal.reason).toBe(error);
    expect(clock.pendingTimers).toBe(0);
    // The handler finishing late changes nothing and leaves no unhandled rejection.
    gate.reject(new Error("late"));
  });

  it("clears the timer as soon as the handler settles", async () => {
    const clock = new FakeClock();
    const { dispatcher, gate, started } = blocking({ defaultTimeoutMs: 60_000, clock });
    const call = dispatcher.dispatch(makeRequest({ procedure: "resourcelease::lease" }));
    await started.promise;
    expect(clock.pendingTimers).toBe(1);
    gate.resolve(ok);
    await expect(call).resolves.toEqual(ok);
    expect(clock.pendingTimers).toBe(0);
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

  it("forwards the caller's cancellation only while the call runs: its listener is removed when the call settles", async () => {
    const clock = new FakeClock();
    const { dispatcher, gate, started } = blocking({ defaultTimeoutMs: 60_000, clock });
    const caller = new AbortController();
    const call = dispatcher.dispatch(makeRequest({ procedure: "resourcelease::lease", signal: caller.signal }));
    const meta = await started.promise;
    expect(getEventListeners(caller.signal, "abort")).toHaveLength(1);
    gate.resolve(ok);
    await expect(call).resolves.toEqual(ok);
    // A long-lived caller signal (one per connection, say) must not collect a listener per call.
    expect(getEventListeners(caller.signal, "abort")).toHaveLength(0);
    caller.abort(new Error("late"));
    expect(meta.signal.aborted).toBe(false);
  });

  it("shares the signal an inbound made for the call (no second one) and aborts it at the deadline", async () => {
    const clock = new FakeClock();
    const { dispatcher, gate, started } = blocking({ maxTimeoutMs: 1000, clock });
    const own = new AbortController();
    const request = makeRequest({ procedure: "resourcelease::lease", signal: own.signal });
    const call = dispatcher.dispatch({ ...request, meta: { ...request.meta, [callAbort]: own } as RequestMeta });
    const meta = await started.promise;
    expect(meta.signal).toBe(own.signal);
    expect(getEventListeners(own.signal, "abort")).toHaveLength(0); // nothing to forward
    clock.advance(1000);
    const error = await call.then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ status: "deadline-exceeded", code: "omnirelay.deadline_exceeded" });
    expect(own.signal.reason).toBe(error);
    expect(clock.pendingTimers).toBe(0);
    gate.reject(new Error("late"));
  });

  it("links a signal of its own when the meta's signal is not the one the inbound's controller made", async () => {
    const clock = new FakeClock();
    const { dispatcher, gate, started } = blocking({ maxTimeoutMs: 1000, clock });
    const own = new AbortController();
    const replaced = new AbortController(); // e.g. a middleware before the dispatcher swapped the signal
    const request = makeRequest({ procedure: "resourcelease::lease", signal: replaced.signal });
    const call = dispatcher.dispatch({ ...request, meta: { ...request.meta, [callAbort]: own } as RequestMeta });
    const meta = await started.promise;
    expect(meta.signal).not.toBe(replaced.signal);
    expect(meta.signal).not.toBe(own.signal);
    replaced.abort(new Error("client went away"));
    expect(meta.signal.aborted).toBe(true);
    gate.reject(meta.signal.reason);
    await expect(call).rejects.toMatchObject({ status: "cancelled" });
    expect(own.signal.aborted).toBe(false);
  });

  it("hands the next step an aborted signal, with the caller's reason, when the caller's was already aborted", async () => {
    const caller = new AbortController();
    const reason = new Error("gone");
    caller.abort(reason);
    const seen: AbortSignal[] = [];
    const middleware = new DeadlineMiddleware({ defaultTimeoutMs: 60_000, clock: new FakeClock() });
    const request = makeRequest({ procedure: "resourcelease::lease", signal: caller.signal });
    await middleware.handle(request, async (r) => {
      seen.push(r.meta.signal);
      return ok;
    });
    expect(seen[0]).not.toBe(caller.signal);
    expect(seen[0]?.aborted).toBe(true);
    expect(seen[0]?.reason).toBe(reason);
  });

  it("stop() cancels a call still running once the grace is over, clears its timer and refuses new calls", async () => {
    const clock = new FakeClock();
    const { dispatcher, started } = blocking({ defaultTimeoutMs: 60_000, clock });
    const call = dispatcher.dispatch(makeRequest({ procedure: "resourcelease::lease" }));
    const meta = await started.promise;
    await dispatcher.stop({ graceMs: 20 });
    await expect(call).rejects.toMatchObject({ status: "cancelled", code: "omnirelay.cancelled" });
    expect(meta.signal.aborted).toBe(true);
    expect(clock.pendingTimers).toBe(0);
    await expect(dispatcher.dispatch(makeRequest({ procedure: "resourcelease::lease" }))).rejects.toMatchObject({
      status: "unavailable",
      code: "omnirelay.inbound.shutting_down",
    });
  });

  it("enforces a real deadline on a handler that waits for its signal", async () => {
    const dispatcher = new Dispatcher({ service: "test-svc", deadlines: { maxTimeoutMs: 40 } });
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
    const { dispatcher, seen } = recordingDispatcher({ clock });
    await dispatcher.dispatch(makeRequest({ deadline: clock.now() + 100 * 86_400_000 }));
    expect(seen[0]?.deadline).toBe(clock.now() + maxDeadlineHorizonMs);

    const real = new Dispatcher({ service: "test-svc" });
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
    expect(() => new Dispatcher({ service: "s", deadlines: { maxTimeoutMs: 0 } })).toThrow(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "maxTimeoutMs" } }),
    );
    expect(() => new Dispatcher({ service: "s", deadlines: { defaultTimeoutMs: 2000, maxTimeoutMs: 1000 } })).toThrow(
      expect.objectContaining({ metadata: { option: "defaultTimeoutMs" } }),
    );
  });

  it("refuses a DeadlineMiddleware in any chain, so a call never runs two deadline timers", () => {
    const refused = expect.objectContaining({
      status: "invalid-argument",
      code: "resourcelease.options.invalid",
      message: expect.stringContaining("deadlines"),
    });
    expect(() => new Dispatcher({ service: "s", inboundMiddleware: [new DeadlineMiddleware()] })).toThrow(refused);
    const dispatcher = new Dispatcher({ service: "s" });
    expect(() => dispatcher.use(new DeadlineMiddleware())).toThrow(refused);
    expect(() =>
      dispatcher.register({
        name: "x::y",
        definition: { verb: "y", request: undefined as never, response: undefined as never },
        handler: async () => ({}),
        middleware: [new DeadlineMiddleware()],
      }),
    ).toThrow(refused);
    expect(dispatcher.lookup("x::y")).toBeUndefined();
  });
});

describe("DeadlineMiddleware on its own (e.g. in an outbound chain)", () => {
  it("close() cancels calls in flight, clears their timers and refuses new calls", async () => {
    const clock = new FakeClock();
    const middleware = new DeadlineMiddleware({ defaultTimeoutMs: 60_000, clock });
    const started = deferred<RequestMeta>();
    const run = composeInbound([middleware], async (request) => {
      started.resolve(request.meta);
      return new Promise<UnaryResponse>(() => {});
    });
    const call = run(makeRequest());
    const meta = await started.promise;
    expect(middleware.activeCalls).toBe(1);
    middleware[Symbol.dispose]();
    await expect(call).rejects.toMatchObject({ status: "cancelled", code: "omnirelay.cancelled" });
    expect(meta.signal.aborted).toBe(true);
    expect(clock.pendingTimers).toBe(0);
    expect(middleware.activeCalls).toBe(0);
    await expect(run(makeRequest())).rejects.toMatchObject({
      status: "unavailable",
      code: "omnirelay.inbound.shutting_down",
    });
  });
});
