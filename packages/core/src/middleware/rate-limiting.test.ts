import { describe, expect, it } from "vitest";
import { BackpressureAwareRateLimiter } from "../backpressure/backpressure-aware-rate-limiter.js";
import { ConcurrencyLimiter, TokenBucketLimiter } from "../backpressure/rate-limiters.js";
import type { Logger } from "../contracts/health.js";
import { Dispatcher } from "../dispatcher/dispatcher.js";
import type { RequestMeta, UnaryResponse } from "../dispatcher/types.js";
import { LeaseRequestMessage } from "../resourcelease/messages.js";
import { FakeClock } from "../testing/fake-clock.js";
import { requestSite } from "../wire/site.js";
import { isLeaseLongPoll, RateLimitingMiddleware, type RateLimitingMiddlewareOptions } from "./rate-limiting.js";
import { deferred, makeRequest, registerRaw } from "./test-helpers.js";

const ok: UnaryResponse = { message: {} };

/** lease and complete procedures that block until `release()`; `started` counts handler entries, `bodies` their bodies. */
function setup(options: RateLimitingMiddlewareOptions) {
  const dispatcher = new Dispatcher({ service: "test-svc", inboundMiddleware: [new RateLimitingMiddleware(options)] });
  let gate = deferred<UnaryResponse>();
  const counters = { started: 0 };
  const bodies: unknown[] = [];
  for (const name of ["resourcelease::lease", "resourcelease::complete", "resourcelease.billing::lease"]) {
    registerRaw(dispatcher, name, async (request) => {
      counters.started++;
      bodies.push(request.message);
      return gate.promise;
    });
  }
  const release = (outcome: "resolve" | "reject" = "resolve") => {
    if (outcome === "resolve") gate.resolve(ok);
    else gate.reject(new Error("handler failed"));
    gate = deferred<UnaryResponse>();
  };
  const call = (procedure: string, body: unknown = {}, meta: Partial<RequestMeta> = {}) =>
    dispatcher.dispatch(makeRequest({ procedure, ...meta }, body));
  return { call, release, counters, bodies };
}

/** Meta of a call from `address` with no principal. */
const from = (address: string): Partial<RequestMeta> => ({
  security: { clientCertificateVerified: false, remoteAddress: address },
});
/** Meta of a call whose principal was bound. */
const as = (principal: string): Partial<RequestMeta> => ({ principal, ...from("10.0.0.1") });

describe("isLeaseLongPoll", () => {
  const check = (procedure: string, message: unknown) => isLeaseLongPoll(makeRequest({ procedure }, message));

  it("is true only for a lease whose request asks for waitMs > 0", () => {
    expect(check("resourcelease::lease", { waitMs: 5000 })).toBe(true);
    expect(check("ResourceLease.Billing::LEASE", { waitMs: 1 })).toBe(true);
    expect(check("resourcelease::lease", { waitMs: 0 })).toBe(false);
    expect(check("resourcelease::lease", { waitMs: "5000" })).toBe(false);
    expect(check("resourcelease::lease", {})).toBe(false);
    expect(check("resourcelease::complete", { waitMs: 5000 })).toBe(false);
  });

  it("reads the waitMs the lease procedure decoded: an exact waitMs wins over other spellings", () => {
    // Before: the middleware parsed the body itself and the first key in any case decided, so
    // {"WAITMS":0,"waitMs":20000} waited 20 s on a short-call permit. Now it reads the one decoded message.
    const decoded = LeaseRequestMessage.read({ WAITMS: 0, waitMs: 20_000 }, requestSite());
    expect(check("resourcelease::lease", decoded)).toBe(true);
    expect(check("resourcelease::lease", LeaseRequestMessage.read({ WaitMs: 20_000, waitMs: 0 }, requestSite()))).toBe(
      false,
    );
  });

  it("treats messages that are not objects as short calls", () => {
    expect(check("resourcelease::lease", [{ waitMs: 5 }])).toBe(false);
    expect(check("resourcelease::lease", null)).toBe(false);
    expect(check("resourcelease::lease", "waitMs")).toBe(false);
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

  it("keeps long-poll leases on their own pool so completes still pass; over the pool a long poll runs as a plain poll", async () => {
    const limiter = new ConcurrencyLimiter({ permits: 1 });
    const longPollLimiter = new ConcurrencyLimiter({ permits: 2 });
    const { call, release, counters, bodies } = setup({ limiter, longPollLimiter });
    const polls = [
      call("resourcelease::lease", { waitMs: 30_000 }, as("w1")),
      call("resourcelease.billing::lease", { waitMs: 30_000 }, as("w2")),
    ];
    expect(limiter.available).toBe(1);
    expect(longPollLimiter.available).toBe(0);
    // The pool is full: the third long poll is not refused but answered at once, as a lease that does not wait,
    // and as a short call it takes the shared permit.
    const third = call("resourcelease::lease", { waitMs: 1, peerId: "w" }, as("w3"));
    expect(bodies[2]).toEqual({ peerId: "w", waitMs: 0 });
    expect(limiter.available).toBe(0);
    await expect(call("resourcelease::complete")).rejects.toMatchObject({ metadata: { limiter: "shared" } });
    release();
    await Promise.all([...polls, third]);
    const complete = call("resourcelease::complete");
    expect(counters.started).toBe(4);
    release();
    await complete;
    expect(longPollLimiter.available).toBe(2);
    expect(limiter.available).toBe(1);
  });

  it("gives long polls 256 permits by default, apart from the shared pool", async () => {
    const { call, release, bodies } = setup({ limiter: new ConcurrencyLimiter({ permits: 1 }) });
    // 8 authenticated callers × 32 (the per-caller default) fill the pool of 256.
    const polls = Array.from({ length: 256 }, (_, i) => call("resourcelease::lease", { waitMs: 10 }, as(`w${i % 8}`)));
    const over = call("resourcelease::lease", { waitMs: 10 }, as("w9"));
    expect(bodies.at(-1)).toEqual({ waitMs: 0 });
    expect(bodies.filter((b) => (b as { waitMs: number }).waitMs === 10)).toHaveLength(256);
    await expect(call("resourcelease::complete")).rejects.toMatchObject({ metadata: { limiter: "shared" } });
    release();
    await Promise.all([...polls, over]);
  });

  it("admits at most longPollsPerCaller long polls per address (IPv4-mapped IPv6 is the same address)", async () => {
    const { call, release, bodies } = setup({ longPollsPerCaller: 3 });
    const waits = () => bodies.map((b) => (b as { waitMs: number }).waitMs);
    const polls = [
      call("resourcelease::lease", { waitMs: 20_000 }, from("192.0.2.7")),
      call("resourcelease::lease", { waitMs: 20_000 }, from("::ffff:192.0.2.7")),
      call("resourcelease.billing::lease", { waitMs: 20_000 }, from("192.0.2.7")),
      call("resourcelease::lease", { waitMs: 20_000 }, from("::FFFF:c000:0207")),
      call("resourcelease::lease", { waitMs: 20_000 }, from("192.0.2.8")),
    ];
    expect(waits()).toEqual([20_000, 20_000, 20_000, 0, 20_000]);
    release();
    await Promise.all(polls);
    // Settled polls give their slots back, failed ones too.
    const again = [
      call("resourcelease::lease", { waitMs: 5 }, from("192.0.2.7")),
      call("resourcelease::lease", { waitMs: 5 }, from("192.0.2.7")),
      call("resourcelease::lease", { waitMs: 5 }, from("192.0.2.7")),
    ];
    release("reject");
    await Promise.allSettled(again);
    const last = call("resourcelease::lease", { waitMs: 5 }, from("192.0.2.7"));
    expect(waits().at(-1)).toBe(5);
    release();
    await last;
  });

  it("keeps a share of the long-poll pool for authenticated callers", async () => {
    const longPollLimiter = new ConcurrencyLimiter({ permits: 8 });
    const { call, release, bodies } = setup({ longPollLimiter, longPollsPerCaller: 4 });
    const waits = () => bodies.map((b) => (b as { waitMs: number }).waitMs);
    // Anonymous callers from many addresses take three quarters of the pool (6 of 8), no more.
    const anonymous = Array.from({ length: 10 }, (_, i) =>
      call("resourcelease::lease", { waitMs: 1_000 }, from(`198.51.100.${i}`)),
    );
    expect(waits().filter((w) => w > 0)).toHaveLength(6);
    // An authenticated worker (a bound principal, or a verified client certificate) still waits.
    const worker = call("resourcelease::lease", { waitMs: 1_000 }, as("worker-1"));
    const certified = call(
      "resourcelease::lease",
      { waitMs: 1_000 },
      {
        security: {
          clientCertificateVerified: true,
          clientCertificateSubject: "worker-2",
          remoteAddress: "198.51.100.1",
        },
      },
    );
    expect(waits().slice(-2)).toEqual([1_000, 1_000]);
    // The pool is now full for everyone.
    const late = call("resourcelease::lease", { waitMs: 1_000 }, as("worker-3"));
    expect(waits().at(-1)).toBe(0);
    release();
    await Promise.all([...anonymous, worker, certified, late]);
  });

  it("refuses a long poll it cannot turn into a plain poll with 429 limiter long-poll", async () => {
    const { call, release } = setup({ longPollsPerCaller: 1, isLongPoll: () => true, retryAfterMs: 250 });
    const first = call("resourcelease::complete", { other: 1 }, from("10.1.1.1"));
    await expect(call("resourcelease::complete", { other: 1 }, from("10.1.1.1"))).rejects.toMatchObject({
      status: "resource-exhausted",
      code: "omnirelay.rate_limited",
      metadata: { limiter: "long-poll", retryAfterMs: "250" },
    });
    release();
    await first;
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
    for (const longPollsPerCaller of [0, 1.5, Number.NaN]) {
      expect(() => new RateLimitingMiddleware({ longPollsPerCaller })).toThrow(
        expect.objectContaining({ metadata: { option: "longPollsPerCaller" } }),
      );
    }
    expect(() => new RateLimitingMiddleware({ anonymousLongPolls: -1 })).toThrow(
      expect.objectContaining({ metadata: { option: "anonymousLongPolls" } }),
    );
  });
});
