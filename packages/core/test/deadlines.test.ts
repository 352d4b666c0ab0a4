import { afterEach, describe, expect, it } from "vitest";
import { maxDeadlineHorizonMs } from "../src/middleware/index.js";
import { FakeClock } from "../src/testing/index.js";
import { payload, startServer } from "./http-helpers.js";

type Server = Awaited<ReturnType<typeof startServer>>;
let server: Server | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

/** Two pending items; returns the server. */
async function serverWithItems(options: Parameters<typeof startServer>[0] = {}): Promise<Server> {
  server = await startServer(options);
  await server.post("resourcelease::enqueue", { payloads: [payload("a"), payload("b")] });
  return server;
}

describe("call deadlines over HTTP", () => {
  it("a drain whose deadline has already passed is refused with 504 before it runs; the queue keeps its items", async () => {
    const s = await serverWithItems();
    const expired: Array<Record<string, string>> = [
      { "rpc-deadline": "2000-01-01T00:00:00Z" },
      { "rpc-deadline": "1999-12-31T23:00:00-01:00" },
      { "rpc-ttl-ms": "0" },
      { "rpc-ttl-ms": "60000", "rpc-deadline": "2000-01-01T00:00:00Z" }, // the earlier one wins
    ];
    for (const headers of expired) {
      const r = await s.post("resourcelease::drain", {}, headers);
      expect(r.status, JSON.stringify(headers)).toBe(504);
      expect(r.json).toMatchObject({ status: "DEADLINE_EXCEEDED", code: "omnirelay.deadline_exceeded" });
      expect(r.headers.get("rpc-error-code")).toBe("omnirelay.deadline_exceeded");
    }
    expect(s.queue.stats()).toMatchObject({ state: "running", pendingCount: 2 });
    expect((await s.post("resourcelease::lease", {})).json).toMatchObject({ sequenceId: 1 });
  });

  it("a malformed body is 400 whatever the deadline: the inbound decodes it before the dispatcher sees the call", async () => {
    const s = await serverWithItems();
    const r = await s.post("resourcelease::lease", { waitMs: "soon" }, { "rpc-ttl-ms": "0" });
    expect(r.status).toBe(400);
    expect(r.json).toMatchObject({ metadata: { field: "waitMs" } });
    expect(s.queue.stats()).toMatchObject({ pendingCount: 2, activeLeaseCount: 0 });
  });

  it("Rpc-Deadline takes only RFC 3339 date-times with a zone, Rpc-Ttl-Ms only whole milliseconds: else 400", async () => {
    const s = await serverWithItems();
    const bad: Array<[string, string]> = [
      ["rpc-deadline", "0"],
      ["rpc-deadline", "42"],
      ["rpc-deadline", "Dec 25 1999"],
      ["rpc-deadline", "2026-01-01"],
      ["rpc-deadline", "2026-01-01T00:00:00"],
      ["rpc-deadline", "Thu, 01 Jan 2026 00:00:00 GMT"],
      ["rpc-deadline", "2026-02-30T00:00:00Z"],
      ["rpc-ttl-ms", "-5"],
      ["rpc-ttl-ms", "1.5"],
      ["rpc-ttl-ms", "1e3"],
      ["rpc-ttl-ms", ""],
    ];
    for (const [header, value] of bad) {
      const r = await s.post("resourcelease::drain", {}, { [header]: value });
      expect(r.status, `${header}: ${value}`).toBe(400);
      expect(r.json).toMatchObject({ code: "omnirelay.request.invalid_header", metadata: { header } });
    }
    expect(s.queue.stats()).toMatchObject({ state: "running", pendingCount: 2 });
    for (const value of ["2999-01-01T00:00:00.5+05:30", "2999-01-01t00:00:00z"]) {
      expect((await s.post("resourcelease::stats", {}, { "rpc-deadline": value })).status, value).toBe(200);
    }
  });

  it("an absurdly far deadline is clamped to 24 days: neither refused nor timed out at once", async () => {
    server = await startServer();
    const s = server;
    s.dispatcher.registerJson("test::deadline", async (_body, meta) => {
      await new Promise((resolve) => setTimeout(resolve, 30));
      return { deadline: meta.deadline };
    });
    const far: Array<Record<string, string>> = [
      { "rpc-ttl-ms": "99999999999999999999" },
      { "rpc-ttl-ms": "9999999999" },
      { "rpc-deadline": "9999-12-31T23:59:59Z" },
    ];
    for (const headers of far) {
      const before = Date.now();
      const r = await s.post("test::deadline", {}, headers);
      expect(r.status, JSON.stringify(headers)).toBe(200);
      expect(r.json.deadline).toBeGreaterThanOrEqual(before + maxDeadlineHorizonMs);
      expect(r.json.deadline).toBeLessThanOrEqual(Date.now() + maxDeadlineHorizonMs);
    }
    const started = Date.now();
    const lease = await s.post("resourcelease::lease", { waitMs: 300 }, { "rpc-ttl-ms": "9999999999" });
    expect(lease.status).toBe(200);
    expect(lease.json).toEqual({});
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });

  it("runs deadlines on the dispatcher's injected clock, with one timer per call", async () => {
    const clock = new FakeClock(Date.UTC(2000, 0, 1)); // long before the wall clock
    server = await startServer({ dispatcher: { clock } });
    const s = server;
    let entered!: () => void;
    const started = new Promise<void>((resolve) => {
      entered = resolve;
    });
    const seen: Array<number | undefined> = [];
    s.dispatcher.registerJson("test::wait", async (_body, meta) => {
      seen.push(meta.deadline);
      entered();
      await new Promise((resolve) => meta.signal.addEventListener("abort", resolve, { once: true }));
      return {};
    });
    const answer = s.post("test::wait", {}, { "rpc-ttl-ms": "1000" });
    await started;
    expect(seen).toEqual([clock.now() + 1000]);
    // The deadline is enforced once, by the dispatcher: the inbound only read it.
    expect(clock.pendingTimers).toBe(1);
    clock.advance(999);
    clock.advance(1);
    const r = await answer;
    expect(r.status).toBe(504);
    expect(r.json.code).toBe("omnirelay.deadline_exceeded");
    // A deadline in the past of the wall clock but in the future of the injected one is accepted.
    const stats = await s.post("resourcelease::stats", {}, { "rpc-deadline": "2000-01-01T00:00:05Z" });
    expect(stats.status).toBe(200);
    expect(clock.pendingTimers).toBe(0);
  });

  it("gives an HTTP handler one signal, which aborts when the client goes away and, otherwise, at the deadline", async () => {
    server = await startServer();
    const s = server;
    const reasons: unknown[] = [];
    s.dispatcher.registerJson("test::wait", async (_body, meta) => {
      await new Promise((resolve) => meta.signal.addEventListener("abort", resolve, { once: true }));
      reasons.push(meta.signal.reason);
      return {};
    });
    // The client goes away mid-call (a deadline is set, so the dispatcher's deadline step runs too).
    const gone = new AbortController();
    const call = fetch(s.url, {
      method: "POST",
      headers: { "content-type": "application/json", "rpc-procedure": "test::wait", "rpc-ttl-ms": "60000" },
      body: "{}",
      signal: gone.signal,
    });
    await new Promise((resolve) => setTimeout(resolve, 50));
    gone.abort();
    await call.catch(() => undefined);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatchObject({ status: "cancelled", code: "omnirelay.cancelled" });
    // Nobody goes away: the same signal aborts at the deadline, with the deadline's error.
    const late = await s.post("test::wait", {}, { "rpc-ttl-ms": "100" });
    expect(late.status).toBe(504);
    expect(reasons[1]).toMatchObject({ status: "deadline-exceeded", code: "omnirelay.deadline_exceeded" });
  });

  it("applies the dispatcher's deadline rules to HTTP calls: maxTimeoutMs caps, defaultTimeoutMs fills in", async () => {
    const clock = new FakeClock(Date.UTC(2000, 0, 1));
    server = await startServer({ dispatcher: { clock, deadlines: { defaultTimeoutMs: 500, maxTimeoutMs: 2000 } } });
    const s = server;
    s.dispatcher.registerJson("test::deadline", async (_body, meta) => ({ deadline: meta.deadline }));
    const capped = await s.post("test::deadline", {}, { "rpc-ttl-ms": "60000" });
    expect(capped.json.deadline).toBe(clock.now() + 2000);
    const filled = await s.post("test::deadline", {});
    expect(filled.json.deadline).toBe(clock.now() + 500);
    const own = await s.post("test::deadline", {}, { "rpc-ttl-ms": "700" });
    expect(own.json.deadline).toBe(clock.now() + 700);
  });
});
