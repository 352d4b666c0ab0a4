import { describe, expect, it } from "vitest";
import type { LifecycleState } from "../contracts/lifecycle.js";
import { deferred, makeRequest } from "../middleware/test-helpers.js";
import { Dispatcher } from "./dispatcher.js";
import { LifecycleGroup } from "./lifecycle.js";

/** An inbound double that records what happens to it in `log`. */
function inbound(name: string, log: string[], options: { failStart?: boolean; graceSeen?: number[] } = {}) {
  let state: LifecycleState = "idle";
  return {
    get state() {
      return state;
    },
    async start() {
      log.push(`start ${name}`);
      if (options.failStart) throw new Error(`${name} cannot bind`);
      state = "running";
    },
    async close(o: { graceMs?: number } = {}) {
      log.push(`close ${name}`);
      options.graceSeen?.push(o.graceMs ?? -1);
      state = "stopped";
    },
  };
}

/** A component double; `start` only when `startable`. */
function component(name: string, log: string[], options: { startable?: boolean; failClose?: boolean } = {}) {
  const closeIt = async () => {
    log.push(`close ${name}`);
    if (options.failClose) throw new Error(`${name} failed to close`);
  };
  if (!options.startable) return { close: closeIt };
  return {
    start: async () => {
      log.push(`start ${name}`);
    },
    close: closeIt,
  };
}

describe("LifecycleGroup", () => {
  it("starts components before inbounds, and stops inbounds, then the drain hook, then components in reverse", async () => {
    const log: string[] = [];
    const graceSeen: number[] = [];
    const group = new LifecycleGroup({
      drain: async (remainingMs) => {
        log.push("drain");
        expect(remainingMs).toBeGreaterThan(0);
        expect(remainingMs).toBeLessThanOrEqual(1234);
      },
    });
    group
      .addComponent(component("log", log))
      .addComponent(component("follower", log, { startable: true }))
      .addInbound(inbound("http", log, { graceSeen }))
      .addInbound(inbound("grpc", log, { graceSeen }))
      .addComponent(component("queue", log));
    expect(group.state).toBe("idle");
    await group.start();
    expect(group.state).toBe("running");
    expect(log).toEqual(["start follower", "start http", "start grpc"]);
    log.length = 0;
    await group.stop({ graceMs: 1234 });
    expect(group.state).toBe("stopped");
    expect(log).toEqual(["close http", "close grpc", "drain", "close queue", "close follower", "close log"]);
    expect(graceSeen).toEqual([1234, 1234]);
  });

  it("start() and stop() are idempotent; start() after stop() is refused", async () => {
    const log: string[] = [];
    const graceSeen: number[] = [];
    const group = new LifecycleGroup()
      .addInbound(inbound("http", log, { graceSeen }))
      .addComponent(component("queue", log));
    const [a, b] = [group.start(), group.start()];
    expect(group.state).toBe("starting");
    await Promise.all([a, b]);
    await group.start();
    expect(log).toEqual(["start http"]);
    const [c, d] = [group.stop(), group.stop()];
    expect(c).toBe(d);
    await c;
    await group.stop();
    await group[Symbol.asyncDispose]();
    expect(log).toEqual(["start http", "close http", "close queue"]);
    expect(graceSeen).toEqual([-1]); // no grace given: the inbound drains within its own
    await expect(group.start()).rejects.toMatchObject({
      status: "failed-precondition",
      code: "omnirelay.lifecycle.state",
    });
  });

  it("stop() before start() closes what it was given and starts nothing", async () => {
    const log: string[] = [];
    const group = new LifecycleGroup()
      .addComponent(component("follower", log, { startable: true }))
      .addInbound(inbound("http", log));
    await group.stop();
    expect(group.state).toBe("stopped");
    expect(log).toEqual(["close http", "close follower"]);
  });

  it("a start() that fails stops everything, is stopped, and rethrows", async () => {
    const log: string[] = [];
    const group = new LifecycleGroup()
      .addComponent(component("queue", log))
      .addInbound(inbound("grpc", log))
      .addInbound(inbound("http", log, { failStart: true }));
    await expect(group.start()).rejects.toThrow("http cannot bind");
    expect(group.state).toBe("stopped");
    expect(log).toEqual(["start grpc", "start http", "close grpc", "close http", "close queue"]);
  });

  it("stop() during start() lets the start finish, then stops", async () => {
    const log: string[] = [];
    const gate = deferred<void>();
    const slow = {
      start: async () => {
        log.push("start follower");
        await gate.promise;
      },
      close: async () => {
        log.push("close follower");
      },
    };
    const group = new LifecycleGroup().addComponent(slow).addInbound(inbound("http", log));
    const starting = group.start();
    const stopping = group.stop();
    gate.resolve();
    await starting;
    await stopping;
    // The inbound was never started: stop() came first.
    expect(log).toEqual(["start follower", "close http", "close follower"]);
    expect(group.state).toBe("stopped");
  });

  it("a part that fails to close does not keep the others open; the first failure is rethrown", async () => {
    const log: string[] = [];
    const group = new LifecycleGroup()
      .addComponent(component("log", log))
      .addComponent(component("queue", log, { failClose: true }))
      .addComponent(component("tracker", log, { failClose: true }));
    await expect(group.stop()).rejects.toThrow("tracker failed to close");
    expect(log).toEqual(["close tracker", "close queue", "close log"]);
    expect(group.state).toBe("stopped");
  });

  it("refuses inbounds once started, components once stopping, and startable components once started", async () => {
    const log: string[] = [];
    const group = new LifecycleGroup();
    await group.start();
    const refused = { status: "failed-precondition", code: "omnirelay.lifecycle.state" };
    expect(() => group.addInbound(inbound("late", log))).toThrow(expect.objectContaining(refused));
    expect(() => group.addComponent(component("follower", log, { startable: true }))).toThrow(
      expect.objectContaining(refused),
    );
    group.addComponent(component("queue", log)); // nothing to start: closed by stop()
    await group.stop();
    expect(log).toEqual(["close queue"]);
    expect(() => group.addComponent(component("late", log))).toThrow(expect.objectContaining(refused));
  });
});

describe("Dispatcher lifecycle (in process)", () => {
  it("stop() waits for a call in flight, then refuses new calls, then closes its components", async () => {
    const log: string[] = [];
    const dispatcher = new Dispatcher({ service: "test-svc" });
    dispatcher.addComponent(component("queue", log));
    const gate = deferred<void>();
    const entered = deferred<void>();
    dispatcher.registerJson("test::slow", async () => {
      entered.resolve();
      await gate.promise;
      log.push("call finished");
      return { ok: true };
    });
    await dispatcher.start();
    expect(dispatcher.state).toBe("running");
    const call = dispatcher.dispatch(makeRequest({ procedure: "test::slow" }));
    await entered.promise;
    const stopping = dispatcher.stop({ graceMs: 5_000 });
    expect(dispatcher.state).toBe("draining");
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(log).toEqual([]); // the queue stays open while the call runs
    gate.resolve();
    await expect(call).resolves.toEqual({ message: { ok: true } });
    await stopping;
    expect(log).toEqual(["call finished", "close queue"]);
    expect(dispatcher.state).toBe("stopped");
    await expect(dispatcher.dispatch(makeRequest({ procedure: "test::slow" }))).rejects.toMatchObject({
      status: "unavailable",
      code: "omnirelay.inbound.shutting_down",
    });
  });

  it("gives up on a call in flight after the grace and closes its components anyway", async () => {
    const log: string[] = [];
    const dispatcher = new Dispatcher({ service: "test-svc" });
    dispatcher.addComponent(component("queue", log));
    const entered = deferred<void>();
    dispatcher.registerJson("test::stuck", async (_body, meta) => {
      entered.resolve();
      await new Promise((resolve) => meta.signal.addEventListener("abort", resolve, { once: true }));
      return {};
    });
    const call = dispatcher.dispatch(makeRequest({ procedure: "test::stuck", deadline: Date.now() + 60_000 }));
    await entered.promise;
    const started = Date.now();
    await dispatcher.stop({ graceMs: 50 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(45);
    expect(log).toEqual(["close queue"]);
    // A call with a deadline is cancelled when the grace is over.
    await expect(call).rejects.toMatchObject({ status: "cancelled", code: "omnirelay.cancelled" });
  });
});
