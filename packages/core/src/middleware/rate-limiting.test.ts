import { describe, expect, it } from "vitest";
import { BackpressureAwareRateLimiter } from "../backpressure/backpressure-aware-rate-limiter.js";
import { ConcurrencyLimiter, TokenBucketLimiter } from "../backpressure/rate-limiters.js";
import type { Logger } from "../contracts/health.js";
import { Dispatcher } from "../dispatcher/dispatcher.js";
import type { RequestMeta, UnaryResponse } from "../dispatcher/types.js";
import { FakeClock } from "../testing/fake-clock.js";
import { isLeaseLongPoll, RateLimitingMiddleware, type RateLimitingMiddlewareOptions } from "./rate-limiting.js";
import { deferred, makeRequest } from "./test-helpers.js";

const ok: UnaryResponse = { body: new Uint8Array(), encoding: "json" };

/** lease and complete procedures that block until `release()`; `started` counts handler entries. */
function setup(options: RateLimitingMiddlewareOptions) {
  const dispatcher = new Dispatcher({ service: "test-svc", inboundMiddleware: [new RateLimitingMiddleware(options)] });
  let gate = deferred<UnaryResponse>();
  const counters = { started: 0 };
  for (const name of ["resourcelease::lease", "resourcelease::complete", "resourcelease.billing::lease"]) {
    dispatcher.register({
      name,
      handler: async () => {
        counters.started++;
        return gate.promise;
      },
    });
  }
  const release = (outcome: "resolve" | "reject" = "resolve") => {
    if (outcome === "resolve") gate.resolve(ok);
    else gate.reject(new Error("handler failed"));
    gate = deferred<UnaryResponse>();
  };
  const call = (procedure: string, body: unknown = {}) => dispatcher.dispatch(makeRequest({ procedure }, body));
  return { call, release, counters };
}

describe("isLeaseLongPoll", () => {
  const body = (value: unknown) => new TextEncoder().encode(JSON.stringify(value));
  const check = (procedure: string, raw: Uint8Array) => isLeaseLongPoll({ ...makeRequest({ procedure }), body: raw });

  it("is true only for a lease with waitMs > 0", () => {
    expect(check("resourcelease::lease", body({ waitMs: 5000 }))).toBe(true);
    expect(check("ResourceLease.Billing::LEASE", body({ WAITMS: 1 }))).toBe(true);
    expect(check("resourcelease::lease", body({ waitMs: 0 }))).toBe(false);
    expect(check("resourcelease::lease", body({ waitMs: "5000" }))).toBe(false);
    expect(check("resourcelease::lease", body({}))).toBe(false);
    expect(check("resourcelease::complete", body({ waitMs: 5000 }))).toBe(false);
  });

  it("treats bodies that are not JSON objects as short calls", () => {
    expect(check("resourcelease::lease", new TextEncoder().encode("{waitMs: 5"))).toBe(false);
    expect(check("resourcelease::lease", new Uint8Array([0xff, 0xfe]))).toBe(false);
    expect(check("resourcelease::lease", body([{ waitMs: 5 }]))).toBe(false);
    expect(check("resourcelease::lease", body(null))).toBe(false);
    expect(check("resourcelease::lease", new Uint8Array())).toBe(false);
  });
});

describe("RateLimitingMiddleware", () => {
  it("holds a permit for the length of the call and refuses calls beyond the limit", async () => {
    const limiter = new ConcurrencyLimiter({ permits: 1 });
    const { call, release, counters } = setup({ limiter });
    const first = call("resourcelease::complete");
    await expect(call("resourcelease::complete")).rejects.toMatchObject({
      status: "resource-exhausted",
      code: "omnirelay.rate_limited",
      metadata: { procedure: "resourcelease::complete", retryAfterMs: "1000", limiter: "shared" },
    });
    expect(counters.started).toBe(1);
    release();
    await first;
    expect(limiter.available).toBe(1);
    const failing = call("resourcelease::complete");
    release("reject");
    await expect(failing).rejects.toMatchObject({ code: "omnirelay.internal" });
    expect(limiter.available).toBe(1);
  });

  it("keeps long-poll leases on their own limiter so completes still pass", async () => {
    const limiter = new ConcurrencyLimiter({ permits: 1 });
    const longPollLimiter = new ConcurrencyLimiter({ permits: 2 });
    const { call, release, counters } = setup({ limiter, longPollLimiter });
    const polls = [
      call("resourcelease::lease", { waitMs: 30_000 }),
      call("resourcelease.billing::lease", { waitMs: 30_000 }),
    ];
    await expect(call("resourcelease::lease", { waitMs: 1 })).rejects.toMatchObject({
      code: "omnirelay.rate_limited",
      metadata: { limiter: "long-poll" },
    });
    expect(limiter.available).toBe(1);
    const complete = call("resourcelease::complete");
    expect(counters.started).toBe(3);
    // A lease that does not wait is a short call and shares the (now full) shared limiter.
    await expect(call("resourcelease::lease", { waitMs: 0 })).rejects.toMatchObject({
      metadata: { limiter: "shared" },
    });
    release();
    await Promise.all([...polls, complete]);
    expect(longPollLimiter.available).toBe(2);
    expect(limiter.available).toBe(1);
  });

  it("gives long polls 256 permits by default, apart from the shared pool", async () => {
    const { call, release } = setup({ limiter: new ConcurrencyLimiter({ permits: 1 }) });
    const polls = Array.from({ length: 256 }, () => call("resourcelease::lease", { waitMs: 10 }));
    await expect(call("resourcelease::lease", { waitMs: 10 })).rejects.toMatchObject({
      metadata: { limiter: "long-poll" },
    });
    const complete = call("resourcelease::complete");
    release();
    await Promise.all([...polls, complete]);
  });

  it("throttles every inbound call through the backpressure limiter while backpressure is active", async () => {
    const normal = new ConcurrencyLimiter({ permits: 100 });
    const shed = new ConcurrencyLimiter({ permits: 0 });
    const backpressure = new BackpressureAwareRateLimiter<RequestMeta>({
      normalLimiter: normal,
      backpressureLimiter: shed,
    });
    const { call, release } = setup({ selector: backpressure });
    const before = call("resourcelease::complete");
    expect(normal.available).toBe(99);
    release();
    await before;

    backpressure.setBackpressure(true);
    await expect(call("resourcelease::complete")).rejects.toMatchObject({ code: "omnirelay.rate_limited" });
    const poll = call("resourcelease::lease", { waitMs: 100 });
    release();
    await poll;

    backpressure.setBackpressure(false);
    const after = call("resourcelease::complete");
    release();
    await after;
    expect(normal.available).toBe(100);
  });

  it("prefers the selector's limiter and falls back to the shared one when it returns nothing or throws", async () => {
    const shared = new ConcurrencyLimiter({ permits: 5 });
    const special = new ConcurrencyLimiter({ permits: 5 });
    const errors: unknown[] = [];
    const logger: Logger = { debug() {}, info() {}, warn() {}, error: (obj) => errors.push(obj) };
    const { call, release } = setup({
      limiter: shared,
      logger,
      selector: (meta) => {
        if (meta.procedure.includes("billing")) throw new Error("selector bug");
        return meta.procedure.endsWith("complete") ? special : undefined;
      },
    });
    const calls = [call("resourcelease::complete"), call("resourcelease::lease"), call("resourcelease.billing::lease")];
    expect([special.available, shared.available]).toEqual([4, 3]);
    expect(errors).toHaveLength(1);
    release();
    await Promise.all(calls);
  });

  it("hints the refill time of a token bucket", async () => {
    const clock = new FakeClock();
    const { call, release } = setup({ limiter: new TokenBucketLimiter({ tokensPerSecond: 4, burst: 1, clock }) });
    const first = call("resourcelease::complete");
    await expect(call("resourcelease::complete")).rejects.toMatchObject({ metadata: { retryAfterMs: "250" } });
    clock.advance(250);
    const second = call("resourcelease::complete");
    release();
    await Promise.all([first, second]);
  });

  it("validates its options", () => {
    expect(() => new RateLimitingMiddleware({ limiter: {} as ConcurrencyLimiter })).toThrow(
      expect.objectContaining({ code: "resourcelease.options.invalid", metadata: { option: "limiter" } }),
    );
    expect(() => new RateLimitingMiddleware({ selector: {} as never })).toThrow(
      expect.objectContaining({ metadata: { option: "selector" } }),
    );
    expect(() => new RateLimitingMiddleware({ retryAfterMs: -5 })).toThrow(
      expect.objectContaining({ metadata: { option: "retryAfterMs" } }),
    );
  });
});
