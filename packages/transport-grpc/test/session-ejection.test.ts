import { PeerLeaseHealthTracker } from "@omnirelay/core/peers";
import { FakeClock } from "@omnirelay/core/testing";
import type { SessionServerFrame } from "@omnirelay/core/wire";
import { afterEach, describe, expect, it } from "vitest";
import { Cleanup, clientStack } from "./harness.js";

const item = (id: string) => ({ resourceType: "t", resourceId: id, partitionKey: "p", payloadEncoding: "json" });
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

async function until(ok: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error("timed out");
    await sleep(10);
  }
}

describe("a worker session of an ejected peer over gRPC", () => {
  const cleanup = new Cleanup();
  afterEach(() => cleanup.closeAll());

  it("stays open but gets no grants until the ejection ends, then gets them", async () => {
    const clock = new FakeClock();
    const tracker = new PeerLeaseHealthTracker({ clock, ejection: { consecutiveExpiries: 3, baseEjectionMs: 10_000 } });
    const stack = await clientStack(cleanup, { clock, component: { healthTracker: tracker } });
    const { outbound } = stack;
    const client = stack.client();
    tracker.recordPoll("other");
    for (const sequenceId of [901, 902, 903]) {
      const ownership = { sequenceId, attempt: 1, leaseId: `l-${sequenceId}`, fencingToken: sequenceId };
      for (const eventType of ["LeaseGranted", "LeaseExpired"] as const) {
        tracker.observe({
          sequenceNumber: 0,
          eventType,
          timestamp: clock.now(),
          metadata: {},
          peerId: "worker-a",
          ownership,
        });
      }
    }
    expect(tracker.ejection("worker-a")).toBeDefined();
    await client.enqueueMany([item("a"), item("b")]);

    const frames: SessionServerFrame[] = [];
    let opened = false;
    let closed = false;
    const channel = outbound.openSession({
      namespace: "resourcelease",
      caller: "worker-a",
      onOpen: () => {
        opened = true;
      },
      onFrame: (frame) => frames.push(frame),
      onClose: () => {
        closed = true;
      },
    });
    cleanup.add({ close: async () => channel.close() });
    await until(() => opened);
    channel.send({ credit: 2 });
    await sleep(200);
    const grants = () => frames.flatMap((f) => [...(f.grants ?? [])]);
    expect(grants()).toEqual([]);
    expect(closed).toBe(false);

    clock.advance(10_000);
    await until(() => grants().length === 2);
    expect(closed).toBe(false);
  });
});
