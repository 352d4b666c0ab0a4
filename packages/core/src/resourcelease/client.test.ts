import { afterEach, describe, expect, it } from "vitest";
import { Dispatcher } from "../dispatcher/dispatcher.js";
import { FakeClock } from "../testing/fake-clock.js";
import { HttpInbound } from "../transport/http/inbound.js";
import { HttpOutbound } from "../transport/http/outbound.js";
import { ResourceLeaseClient } from "./client.js";
import { ResourceLeaseDispatcherComponent } from "./component.js";

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe("one clock for a node", () => {
  it("a component's own queue runs on the dispatcher's clock", async () => {
    const clock = new FakeClock(Date.UTC(2000, 0, 1));
    const dispatcher = new Dispatcher({ service: "test-svc", clock });
    const component = new ResourceLeaseDispatcherComponent(dispatcher, { queueOptions: { leaseDurationMs: 5_000 } });
    cleanups.push(() => dispatcher.stop());
    await component.queue.enqueue({ resourceType: "t", resourceId: "a", partitionKey: "p", payloadEncoding: "json" });
    const [grant] = await component.queue.lease();
    expect(grant?.leaseExpiresAt).toBe(clock.now() + 5_000);
  });
});

describe("ResourceLeaseClient deadlines", () => {
  it("reckons each call's deadline on its injected clock, end to end over HTTP", async () => {
    const clock = new FakeClock(Date.UTC(2000, 0, 1)); // far from the wall clock
    const dispatcher = new Dispatcher({ service: "test-svc", clock });
    new ResourceLeaseDispatcherComponent(dispatcher);
    const seen: Array<number | undefined> = [];
    dispatcher.use({
      handle: (request, next) => {
        seen.push(request.meta.deadline);
        return next(request);
      },
    });
    const inbound = new HttpInbound({ dispatcher });
    await dispatcher.start();
    cleanups.push(() => dispatcher.stop());
    const client = new ResourceLeaseClient({
      outbound: new HttpOutbound({ url: inbound.url, clock }),
      clock,
      timeoutMs: 1500,
    });
    cleanups.push(() => client.close());
    await client.stats();
    await client.stats({ timeoutMs: 700 });
    expect(seen).toEqual([clock.now() + 1500, clock.now() + 700]);
  });
});

describe("ResourceLeaseClient signals", () => {
  it("gives calls without a signal one shared signal that never aborts, and outbounds may listen to it at any count", async () => {
    const seen: AbortSignal[] = [];
    const release: Array<() => void> = [];
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    // An outbound that listens to each call's signal while the call runs (as the gRPC outbound does).
    const client = new ResourceLeaseClient({
      outbound: {
        call: (_definition, request) => {
          const signal = request.meta.signal;
          seen.push(signal);
          const onAbort = () => undefined;
          signal.addEventListener("abort", onAbort, { once: true });
          return new Promise((resolve) => {
            release.push(() => {
              signal.removeEventListener("abort", onAbort);
              resolve({ message: { pendingCount: 0, activeLeaseCount: 0 } as never });
            });
          });
        },
      },
    });
    const calls = Array.from({ length: 20 }, () => client.stats().catch(() => undefined));
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen).toHaveLength(20);
    expect(new Set(seen).size).toBe(1);
    expect(seen[0]?.aborted).toBe(false);
    for (const r of release) r();
    await Promise.all(calls);
    await new Promise((resolve) => setImmediate(resolve));
    process.off("warning", onWarning);
    expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning")).toEqual([]);
    // A call given its own signal keeps it.
    const own = new AbortController();
    const call = client.stats({ signal: own.signal }).catch(() => undefined);
    await new Promise((resolve) => setImmediate(resolve));
    expect(seen[20]).toBe(own.signal);
    release[20]?.();
    await call;
  });
});
