import { request } from "node:http";
import { SignJWT } from "jose";
import { afterEach, describe, expect, it } from "vitest";
import type { ResourceLeaseReplicationEvent } from "../../contracts/events.js";
import type { ResourceLeaseGrant } from "../../contracts/payload.js";
import { Dispatcher } from "../../dispatcher/dispatcher.js";
import { ErrorCodes } from "../../errors/codes.js";
import { AuthorizationMiddleware } from "../../middleware/authorization.js";
import { PrincipalBindingMiddleware } from "../../middleware/principal-binding.js";
import { PeerLeaseHealthTracker } from "../../peers/peer-lease-health-tracker.js";
import { ResourceLeaseClient } from "../../resourcelease/client.js";
import { item } from "../../worker/test-helpers.js";
import { HttpInbound } from "./inbound.js";
import { HttpOutbound } from "./outbound.js";
import { cleanups, closeAll, refusal, session, sleep, stack } from "./session-harness.js";

afterEach(closeAll);

// Worker sessions over WebSocket, spoken by hand on real sockets (127.0.0.1): credit, pushed grants, settlements by
// id, a socket killed mid-lease, the same auth as the unary verbs, and the limits.

describe("worker sessions over HTTP (WebSocket)", () => {
  it("pushes grants up to the credit and no further, answers settlements by id, and leases the next on a completion", async () => {
    const s = await stack();
    await s.client.enqueueMany([1, 2, 3, 4, 5].map(item));
    const w = await session(s.url);
    w.send({ credit: 2 });
    await w.until(() => w.grants().length === 2);
    await sleep(150);
    expect(w.grants()).toHaveLength(2); // credit respected: 3 items still pending
    expect(s.queue.stats()).toMatchObject({ pendingCount: 3, activeLeaseCount: 2 });
    const [first, second] = w.grants() as [ResourceLeaseGrant, ResourceLeaseGrant];
    // Complete and lease the next, in one frame.
    w.send({ complete: [{ id: 1, ownershipToken: first.ownershipToken }], credit: 1 });
    await w.until(() => w.result(1) !== undefined && w.grants().length === 3);
    expect(w.result(1)).toEqual({ id: 1 });
    // A heartbeat and a fail with a stale token, in one frame: each answered under its own id.
    w.send({
      heartbeat: [{ id: 2, ownershipToken: second.ownershipToken }],
      fail: [{ id: 3, ownershipToken: first.ownershipToken, reason: "late" }],
    });
    await w.until(() => w.result(2) !== undefined && w.result(3) !== undefined);
    expect(w.result(2)).toMatchObject({ id: 2, remainingMs: 2000 });
    expect(w.result(3)).toMatchObject({ id: 3, status: "failed-precondition" });
    expect(String(w.result(3)?.code)).toMatch(/^resourcelease\.lease\./);
    expect(s.queue.stats()).toMatchObject({ pendingCount: 2, activeLeaseCount: 2 });
    // The grants carry the session's peer: the one named at open.
    const granted = s.events.filter((e) => e.eventType === "LeaseGranted");
    expect(granted.map((e) => e.peerId)).toEqual(["worker-a", "worker-a", "worker-a"]);
  });

  it("pushes an item the moment it is enqueued to a session holding credit", async () => {
    const s = await stack();
    const w = await session(s.url);
    w.send({ credit: 1 });
    await sleep(100);
    expect(w.grants()).toHaveLength(0);
    const started = Date.now();
    await s.client.enqueue(item(1));
    await w.until(() => w.grants().length === 1);
    expect(Date.now() - started).toBeLessThan(500);
  });

  it("grants an item enqueued while the session's last grant commits in that enqueue's own commit, and in order", async () => {
    // A log whose commits can be held: each publish is recorded as the event types it carries.
    const publishes: string[][] = [];
    let release: (() => void) | undefined;
    let held: Promise<void> | undefined;
    const replicator = {
      publish: async (events: readonly ResourceLeaseReplicationEvent[]) => {
        publishes.push(events.map((e) => e.eventType));
        if (held) await held;
      },
    };
    const s = await stack({ queue: { replicator } });
    const w = await session(s.url);
    w.send({ credit: 5 });
    await sleep(50);
    held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const first = s.client.enqueue(item(1));
    await w.until(() => publishes.length === 1);
    const second = s.client.enqueue(item(2)); // arrives while item 1's grant is still committing
    await w.until(() => publishes.length === 2);
    release?.();
    held = undefined;
    await Promise.all([first, second]);
    await w.until(() => w.grants().length === 2);
    // One commit each on the way to the worker; without a lease call waiting meanwhile, item 2 would have taken two
    // (its enqueue, then its grant once the session asked again).
    expect(publishes).toEqual([
      ["Enqueue", "LeaseGranted"],
      ["Enqueue", "LeaseGranted"],
    ]);
    expect(w.grants().map((g) => g.sequenceId)).toEqual([1, 2]);
    expect(s.queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 2 });
  });

  it("keeps asking a queue that does not long-poll (maxWaitMs 0) without spinning, and pushes what comes", async () => {
    const s = await stack({ queue: { maxWaitMs: 0 } });
    const w = await session(s.url);
    w.send({ credit: 1 });
    // A session spinning on instant empty answers would starve the event loop: this timer would not fire in time.
    const before = Date.now();
    await sleep(100);
    expect(Date.now() - before).toBeLessThan(1000);
    await s.client.enqueue(item(1));
    await w.until(() => w.grants().length === 1);
    expect(w.grants()[0]?.sequenceId).toBe(1);
  });

  it("a socket killed mid-lease releases nothing early and grants nothing twice; the next session renews and completes", async () => {
    const s = await stack({ queue: { leaseDurationMs: 1500 } });
    await s.client.enqueueMany([1, 2].map(item));
    const w = await session(s.url);
    w.send({ credit: 1 });
    await w.until(() => w.grants().length === 1);
    const [held] = w.grants() as [ResourceLeaseGrant];
    w.send({ credit: 5 }); // credit outstanding when the socket dies
    await w.until(() => w.grants().length === 2);
    w.ws.terminate(); // the socket dies: no close handshake
    await sleep(200);
    await s.client.enqueue(item(3));
    await sleep(100);
    // Both leases are still held; the new item was not pushed to the dead session.
    expect(s.queue.stats()).toMatchObject({ activeLeaseCount: 2, pendingCount: 1 });
    const other = await s.client.lease({ maxItems: 10, waitMs: 0 });
    expect(other.map((g) => g.sequenceId)).toEqual([3]);
    // The worker's next session renews the held lease and completes it.
    const again = await session(s.url);
    again.send({ heartbeat: [{ id: 1, ownershipToken: held.ownershipToken }] });
    await again.until(() => again.result(1) !== undefined);
    expect(again.result(1)).toMatchObject({ id: 1, remainingMs: 1500 });
    again.send({ complete: [{ id: 2, ownershipToken: held.ownershipToken }] });
    await again.until(() => again.result(2) !== undefined);
    expect(again.result(2)).toEqual({ id: 2 });
    const grantedIds = s.events.filter((e) => e.eventType === "LeaseGranted").map((e) => e.ownership?.sequenceId);
    expect(grantedIds.sort()).toEqual([1, 2, 3]); // each item granted once
  });

  it("refuses a frame that is not JSON, or has a bad field, with a coded error, and keeps serving", async () => {
    const s = await stack();
    const w = await session(s.url);
    w.send("{not json");
    await w.until(() => w.closed() !== undefined);
    expect(w.frames.at(-1)).toMatchObject({ error: { code: ErrorCodes.rpc.sessionFrameInvalid } });
    expect(w.closed()?.code).toBe(4400);
    const v = await session(s.url);
    v.send({ credit: -1 });
    await v.until(() => v.closed() !== undefined);
    expect(v.frames.at(-1)).toMatchObject({ error: { code: ErrorCodes.rpc.sessionFrameInvalid } });
    const t = await session(s.url);
    t.send({ complete: [{ id: 1, ownershipToken: { sequenceId: 1 } }] });
    await t.until(() => t.closed() !== undefined);
    expect(t.frames.at(-1)).toMatchObject({ error: { code: ErrorCodes.rpc.sessionFrameInvalid } });
    await s.client.enqueue(item(1));
    expect(await s.client.lease({ waitMs: 0 })).toHaveLength(1);
  });

  it("caps credit, frame size and silence, each with its code", async () => {
    const s = await stack({ sessions: { maxCredit: 10, maxFrameBytes: 512, idleTimeoutMs: 300 } });
    const a = await session(s.url);
    a.send({ credit: 6 });
    a.send({ credit: 5 });
    await a.until(() => a.closed() !== undefined);
    expect(a.frames.at(-1)).toMatchObject({ error: { code: ErrorCodes.rpc.sessionCreditExceeded } });
    expect(a.closed()?.code).toBe(4429);
    const b = await session(s.url);
    b.send({ heartbeat: [], pad: "x".repeat(600) });
    await b.until(() => b.closed() !== undefined);
    expect(b.frames.at(-1)).toMatchObject({ error: { code: ErrorCodes.rpc.sessionFrameTooLarge } });
    expect(b.closed()?.code).toBe(4413);
    const c = await session(s.url);
    const opened = Date.now();
    const keep = setInterval(() => c.send({}), 100); // keep-alives hold it open past the idle limit…
    await sleep(500);
    clearInterval(keep);
    expect(c.closed()).toBeUndefined();
    await c.until(() => c.closed() !== undefined); // …then silence closes it
    expect(c.frames.at(-1)).toMatchObject({ error: { code: ErrorCodes.rpc.sessionIdle } });
    expect(c.closed()?.code).toBe(4408);
    expect(Date.now() - opened).toBeGreaterThanOrEqual(700);
  });

  it("pings every worker: one that answers stays healthy while idle; one that stops answering is cut off, marked disconnected and sent nothing more", async () => {
    const healthTracker = new PeerLeaseHealthTracker({ gracePeriodMs: 400 });
    const s = await stack({ sessions: { pingIntervalMs: 100 }, healthTracker });
    const peer = (id: string) => healthTracker.snapshot().find((p) => p.peerId === id);
    const a = await session(s.url);
    a.send({ credit: 1 });
    // b's socket stays open but never answers a ping: a link that went down, or a frozen process.
    const b = await session(s.url, { "rpc-caller": "worker-b" }, false);
    b.send({ credit: 5 });
    await b.until(() => b.closed() !== undefined, 3000);
    expect(b.closed()?.code).toBe(1006); // terminated: no close handshake with a worker that does not answer
    expect(peer("worker-b")).toMatchObject({
      isHealthy: false,
      metadata: { "disconnect.reason": "session-unresponsive" },
    });
    // a sent nothing after its credit for more than twice the grace: its pongs alone kept it healthy.
    await sleep(900);
    expect(a.closed()).toBeUndefined();
    expect(peer("worker-a")?.isHealthy).toBe(true);
    // b's credit died with its session: the next items go to a, none to b.
    await s.client.enqueue(item("after-cut"));
    await a.until(() => a.grants().length === 1);
    expect(b.grants()).toHaveLength(0);
  });

  it("a worker whose socket drops is marked disconnected (session-lost) at once; one that closes its session is not", async () => {
    // Grace and ping interval far longer than the test: only the way each socket ends can mark its peer.
    const healthTracker = new PeerLeaseHealthTracker({ gracePeriodMs: 60_000 });
    const s = await stack({ sessions: { pingIntervalMs: 60_000 }, healthTracker });
    const peer = (id: string) => healthTracker.snapshot().find((p) => p.peerId === id);
    const gone = await session(s.url, { "rpc-caller": "worker-gone" });
    const leaving = await session(s.url, { "rpc-caller": "worker-leaving" });
    gone.send({ credit: 1 });
    leaving.send({ credit: 1 });
    await s.client.enqueueMany([1, 2].map(item));
    await gone.until(() => gone.grants().length === 1);
    await leaving.until(() => leaving.grants().length === 1);
    expect(peer("worker-gone")?.isHealthy).toBe(true);
    gone.ws.terminate(); // the process died or its link went away: no close frame
    leaving.ws.close(1000); // the worker ended its session
    await leaving.until(() => leaving.closed() !== undefined);
    await sleep(200);
    expect(peer("worker-gone")).toMatchObject({ isHealthy: false, metadata: { "disconnect.reason": "session-lost" } });
    expect(peer("worker-leaving")?.isHealthy).toBe(true);
    expect(peer("worker-leaving")?.metadata["disconnect.reason"]).toBeUndefined();
    // Leases are untouched either way: both stay held until renewed or expired.
    expect(s.queue.stats()).toMatchObject({ activeLeaseCount: 2, pendingCount: 0 });
    // The dropped worker's next session makes its peer healthy again.
    const back = await session(s.url, { "rpc-caller": "worker-gone" });
    back.send({ credit: 1 });
    await sleep(100);
    expect(peer("worker-gone")?.isHealthy).toBe(true);
  });

  it("answers an upgrade whose namespace is not valid percent-encoding 404, not 500", async () => {
    const s = await stack();
    const { port } = new URL(s.url);
    for (const path of ["/omnirelay/session/%ZZ", "/omnirelay/session/%E0%A4%A"]) {
      const answer = await new Promise<{ status: number | undefined; code: unknown }>((resolve, reject) => {
        const req = request({
          host: "127.0.0.1",
          port,
          path,
          headers: {
            connection: "Upgrade",
            upgrade: "websocket",
            "sec-websocket-version": "13",
            "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
          },
        });
        req.on("upgrade", () => reject(new Error(`${path} was upgraded`)));
        req.on("response", (res) => {
          res.resume();
          resolve({ status: res.statusCode, code: res.headers["rpc-error-code"] });
        });
        req.on("error", reject);
        req.end();
      });
      expect(answer, path).toEqual({ status: 404, code: ErrorCodes.rpc.routeNotFound });
    }
  });

  it("refuses session limits that are not positive numbers", () => {
    const dispatcher = new Dispatcher({ service: "session-options" });
    for (const sessions of [
      { maxCredit: 0 },
      { idleTimeoutMs: -1 },
      { maxFrameBytes: Number.NaN },
      { pingIntervalMs: 0 },
    ]) {
      expect(() => new HttpInbound({ dispatcher, sessions })).toThrow(
        expect.objectContaining({ code: ErrorCodes.resourceLease.optionsInvalid }),
      );
    }
  });

  it("closes its sessions with 1001 when the inbound closes", async () => {
    const s = await stack();
    const w = await session(s.url);
    await s.inbound.close({ graceMs: 50 });
    await w.until(() => w.closed() !== undefined);
    expect(w.closed()?.code).toBe(1001);
    expect(w.frames.at(-1)).toMatchObject({ error: { code: ErrorCodes.rpc.inboundShuttingDown } });
  });
});

describe("worker sessions and auth", () => {
  const secured = () => {
    const dispatcher = new Dispatcher({
      service: "session-auth",
      inboundMiddleware: [
        new PrincipalBindingMiddleware({ trustedProxies: ["127.0.0.1"], acceptClientCertificates: false }),
        new AuthorizationMiddleware({
          rules: [
            { principals: ["alice"], procedures: ["resourcelease::*"] },
            { principals: ["bob"], procedures: ["resourcelease::lease", "resourcelease::enqueue"] },
          ],
        }),
      ],
    });
    return stack({ dispatcher });
  };

  it("refuses an unauthenticated session, and one whose principal may not call every verb it carries", async () => {
    const s = await secured();
    expect(await refusal(s.url, { "rpc-caller": "w" })).toEqual({ status: 401, code: ErrorCodes.auth.required });
    // bob may lease but not complete: a session (which completes) is refused at open.
    expect(await refusal(s.url, { "x-client-principal": "bob" })).toEqual({
      status: 403,
      code: ErrorCodes.auth.forbidden,
    });
  });

  it("ends a session when the bearer token it was opened with expires, as a unary call with it is refused", async () => {
    const key = new TextEncoder().encode("a shared secret of at least 32 bytes!!");
    const dispatcher = new Dispatcher({
      service: "session-jwt",
      inboundMiddleware: [new PrincipalBindingMiddleware({ jwt: { key, clockToleranceMs: 0 } })],
    });
    const s = await stack({ dispatcher });
    const exp = Math.floor(Date.now() / 1000) + 2;
    const token = await new SignJWT({ sub: "alice" })
      .setProtectedHeader({ alg: "HS256" })
      .setExpirationTime(exp)
      .sign(key);
    const headers = { authorization: `Bearer ${token}`, "rpc-caller": "worker-a" };
    const w = await session(s.url, headers);
    w.send({ credit: 5 });
    const producer = new ResourceLeaseClient({ outbound: new HttpOutbound({ url: s.url, headers }) });
    cleanups.push(() => producer.close());
    await producer.enqueue(item(1));
    await w.until(() => w.grants().length === 1); // served while the token is valid
    await w.until(() => w.closed() !== undefined, 5_000);
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000);
    expect(w.frames.at(-1)).toMatchObject({
      error: {
        status: "unauthenticated",
        code: ErrorCodes.auth.invalidToken,
        message: expect.stringMatching(/expired/),
      },
    });
    // The unary verbs say the same of the token now.
    await expect(producer.enqueue(item(2))).rejects.toMatchObject({ code: ErrorCodes.auth.invalidToken });
    expect(s.queue.stats()).toMatchObject({ pendingCount: 0, activeLeaseCount: 1 }); // its grant stays leased
  });

  it("binds every operation of an authenticated session to its principal and peer", async () => {
    const s = await secured();
    const producer = new ResourceLeaseClient({
      outbound: new HttpOutbound({ url: s.url, headers: { "x-client-principal": "alice" } }),
    });
    cleanups.push(() => producer.close());
    await producer.enqueue(item(1));
    const w = await session(s.url, { "x-client-principal": "alice", "rpc-caller": "worker-a" });
    w.send({ credit: 1 });
    await w.until(() => w.grants().length === 1);
    w.send({ complete: [{ id: 7, ownershipToken: w.grants()[0]!.ownershipToken }] });
    await w.until(() => w.result(7) !== undefined);
    expect(w.result(7)).toEqual({ id: 7 });
    const mine = s.events.filter((e) => e.eventType === "LeaseGranted" || e.eventType === "Completed");
    expect(mine.map((e) => [e.eventType, e.peerId, e.principal])).toEqual([
      ["LeaseGranted", "worker-a", "alice"],
      ["Completed", "worker-a", "alice"],
    ]);
  });
});
