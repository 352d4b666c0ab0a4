import { describe, expect, it } from "vitest";
import { ErrorCodes } from "../errors/codes.js";
import { OmniRelayError } from "../errors/omnirelay-error.js";
import type { SessionChannelOptions } from "../resourcelease/session-channel.js";
import type { SessionClientFrame } from "../resourcelease/session-messages.js";
import { FakeClock } from "../testing/fake-clock.js";
import { type Clock, systemClock } from "../util/clock.js";
import { WorkerSession } from "./session-link.js";
import { rejection } from "./test-http-harness.js";

// The worker's end of a session against a channel the test drives: frames gathered per turn, answers by id, a stream
// that stops answering (a half-open socket sends no error) ended by the answer deadline.

const token = { sequenceId: 1, attempt: 1, leaseId: "l1", fencingToken: 1 };

function link(answerTimeoutMs = 10_000, clock: Clock = systemClock) {
  const sent: SessionClientFrame[] = [];
  let closedByWorker = 0;
  let channel: Omit<SessionChannelOptions, "namespace"> | undefined;
  const ended: OmniRelayError[] = [];
  const session = new WorkerSession({
    clock,
    answerTimeoutMs,
    open: (options) => {
      channel = options;
      return {
        send: (frame) => sent.push(frame),
        close: () => {
          closedByWorker++;
          options.onClose(
            new OmniRelayError({ status: "unavailable", code: ErrorCodes.rpc.sessionClosed, message: "closed" }),
          );
        },
      };
    },
    onOpen: () => {},
    onGrants: () => {},
    onClose: (error) => ended.push(error),
  });
  channel?.onOpen();
  return { session, sent, ended, server: () => channel!, closedByWorker: () => closedByWorker };
}

describe("WorkerSession", () => {
  it("sends the credit and settlements of one turn as one frame, and pairs answers by id", async () => {
    const l = link();
    l.session.credit(2);
    const completed = l.session.complete(token);
    const renewed = l.session.heartbeat(token);
    await new Promise((r) => setImmediate(r));
    expect(l.sent).toHaveLength(1);
    const frame = l.sent[0]!;
    expect(frame.credit).toBe(2);
    const completeId = frame.complete![0]!.id;
    const heartbeatId = frame.heartbeat![0]!.id;
    l.server().onFrame({
      results: [
        { id: heartbeatId, leaseExpiresAt: 5000, remainingMs: 3000 },
        { id: completeId, status: "failed-precondition", code: "resourcelease.lease.fenced", message: "fenced" },
      ],
    });
    expect(await renewed).toEqual({ leaseExpiresAt: 5000, remainingMs: 3000 });
    expect(await rejection(completed)).toMatchObject({ code: "resourcelease.lease.fenced" });
  });

  it("sends a full frame at once: 250 completions of one turn go out as 100, 100, then 50 with the rest", async () => {
    const l = link();
    const settled: Promise<unknown>[] = [];
    for (let i = 1; i <= 250; i++) {
      l.session.credit(1);
      settled.push(l.session.complete({ ...token, sequenceId: i, leaseId: `l${i}` }));
      // Sent within the turn, before the dispatcher could have answered anything: it works on the first part while
      // the worker settles the rest.
      if (i === 100) expect(l.sent.map((f) => f.complete?.length)).toEqual([100]);
    }
    expect(l.sent.map((f) => f.complete?.length)).toEqual([100, 100]);
    await new Promise((r) => setImmediate(r));
    expect(l.sent.map((f) => f.complete?.length)).toEqual([100, 100, 50]);
    // Each part carries the credit of its own settlements, and every completion is sent exactly once, in order.
    expect(l.sent.map((f) => f.credit)).toEqual([100, 100, 50]);
    const ids = l.sent.flatMap((f) => f.complete!.map((c) => c.ownershipToken.sequenceId));
    expect(ids).toEqual(Array.from({ length: 250 }, (_, i) => i + 1));
    l.server().onFrame({ results: l.sent.flatMap((f) => f.complete!.map((c) => ({ id: c.id }))) });
    await Promise.all(settled);
  });

  it("ends a session that does not answer a completion in time, and rejects what was waiting", async () => {
    const l = link(50);
    const completed = l.session.complete(token);
    const renewed = l.session.heartbeat(token);
    expect(await rejection(completed)).toMatchObject({ code: ErrorCodes.rpc.deadlineExceeded });
    expect(await rejection(renewed)).toMatchObject({ code: ErrorCodes.rpc.sessionClosed, status: "unavailable" });
    expect(l.closedByWorker()).toBe(1);
    expect(l.ended).toHaveLength(1);
    expect(l.session.isOpen).toBe(false);
    expect(await rejection(l.session.complete(token))).toMatchObject({ code: ErrorCodes.rpc.sessionClosed });
  });

  it("times each completion out at its own deadline: one answered in time does not hide a later one that is not", async () => {
    const clock = new FakeClock(1_000);
    const l = link(100, clock);
    const first = l.session.complete(token);
    await new Promise((r) => setImmediate(r));
    l.server().onFrame({ results: [{ id: l.sent[0]!.complete![0]!.id }] });
    await first;
    clock.advance(60);
    const second = l.session.complete(token);
    let settled = false;
    second.then(
      () => {},
      () => {
        settled = true;
      },
    );
    clock.advance(40); // the first one's deadline: nothing is due
    await Promise.resolve();
    expect(settled).toBe(false);
    expect(l.session.isOpen).toBe(true);
    clock.advance(59); // 1 ms before the second one's
    await Promise.resolve();
    expect(settled).toBe(false);
    clock.advance(1);
    expect(await rejection(second)).toMatchObject({
      code: ErrorCodes.rpc.deadlineExceeded,
      message: "The session did not answer the complete within 100 ms.",
    });
    expect(l.closedByWorker()).toBe(1);
  });

  it("a renewal keeps its own timeout, shorter or longer than the session's", async () => {
    const clock = new FakeClock(1_000);
    const l = link(100, clock);
    const renewed = l.session.heartbeat(token, 30);
    const completed = l.session.complete(token);
    clock.advance(30);
    expect(await rejection(renewed)).toMatchObject({
      code: ErrorCodes.rpc.deadlineExceeded,
      message: "The session did not answer the heartbeat within 30 ms.",
    });
    // The session ended with the renewal's timeout: the completion waiting beside it is rejected as closed.
    expect(await rejection(completed)).toMatchObject({ code: ErrorCodes.rpc.sessionClosed });
  });
});
