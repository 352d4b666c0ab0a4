import { describe, expect, it } from "vitest";
import { isOmniRelayError } from "../errors/omnirelay-error.js";
import { FakeClock } from "../testing/fake-clock.js";
import { RoundRobinPeerChooser } from "./choosers.js";
import { BasicPeer } from "./peer.js";
import type { PeerEjectionOptions } from "./peer-ejection.js";
import { PeerLeaseHealthTracker } from "./peer-lease-health-tracker.js";
import { PeerList } from "./peer-list.js";
import { eventFactory, token } from "./test-helpers.js";

const BASE = 30_000;

function setup(ejection: PeerEjectionOptions | null = { baseEjectionMs: BASE, maxEjectionMs: 100_000 }) {
  const clock = new FakeClock();
  const tracker = new PeerLeaseHealthTracker({ clock, gracePeriodMs: 10 * 60_000, ...(ejection ? { ejection } : {}) });
  const event = eventFactory(clock);
  let next = 0;
  /** `peerId` is granted a lease that then expires. */
  const expire = (peerId: string) => {
    const t = token(++next);
    tracker.observe(event("LeaseGranted", { peerId, ownership: t }));
    tracker.observe(event("LeaseExpired", { peerId, ownership: t }));
  };
  /** `peerId` is granted a lease and completes it. */
  const complete = (peerId: string) => {
    const t = token(++next);
    tracker.observe(event("LeaseGranted", { peerId, ownership: t }));
    tracker.observe(event("Completed", { peerId, ownership: t }));
  };
  const heartbeat = (peerId: string) => tracker.observe(event("Heartbeat", { peerId, ownership: token(next) }));
  return { clock, tracker, expire, complete, heartbeat };
}

function times(n: number, f: () => void): void {
  for (let i = 0; i < n; i++) f();
}

describe("outlier ejection of peers", () => {
  it("ejects a peer after 5 expiries in a row, brings it back after the ejection time, and ejects it longer the second time", () => {
    const { clock, tracker, expire, complete } = setup();
    complete("good"); // a second peer, so ejecting one stays within the share
    times(4, () => expire("bad"));
    expect(tracker.ejection("bad")).toBeUndefined();
    expect(tracker.isPeerEligible("bad")).toBe(true);
    expire("bad");
    const first = tracker.ejection("bad");
    expect(first).toMatchObject({
      reason: "consecutive-expiries",
      consecutiveExpiries: 5,
      ejections: 1,
      ejectedUntil: clock.now() + BASE,
    });
    expect(tracker.isPeerEligible("bad")).toBe(false);
    const snapshot = tracker.snapshot().find((s) => s.peerId === "bad");
    expect(snapshot).toMatchObject({
      isHealthy: false,
      ejectedUntil: clock.now() + BASE,
      ejectionReason: "consecutive-expiries",
    });

    clock.advance(BASE - 1);
    expect(tracker.isPeerEligible("bad")).toBe(false);
    clock.advance(1);
    expect(tracker.ejection("bad")).toBeUndefined();
    expect(tracker.isPeerEligible("bad")).toBe(true);
    expect(tracker.snapshot().find((s) => s.peerId === "bad")?.ejectedUntil).toBeUndefined();

    times(5, () => expire("bad"));
    expect(tracker.ejection("bad")).toMatchObject({ ejections: 2, ejectedUntil: clock.now() + 2 * BASE });
    clock.advance(BASE);
    expect(tracker.isPeerEligible("bad")).toBe(false); // still out: the second ejection lasts twice as long
    clock.advance(BASE);
    expect(tracker.isPeerEligible("bad")).toBe(true);
    expect(tracker.stats().ejections).toBe(2);
  });

  it("a heartbeat or a completion ends a run of expiries", () => {
    const { tracker, expire, complete, heartbeat } = setup();
    complete("good");
    times(4, () => expire("w"));
    heartbeat("w");
    times(4, () => expire("w"));
    complete("w");
    times(4, () => expire("w"));
    expect(tracker.ejection("w")).toBeUndefined();
    expire("w");
    expect(tracker.ejection("w")?.consecutiveExpiries).toBe(5);
  });

  it("caps the ejection time at maxEjectionMs and starts the growth again after a long good spell", () => {
    const { clock, tracker, expire, complete } = setup({ baseEjectionMs: BASE, maxEjectionMs: 50_000 });
    complete("good");
    const eject = () => {
      times(5, () => expire("w"));
      const e = tracker.ejection("w");
      clock.advance((e?.ejectedUntil ?? clock.now()) - clock.now());
      return e;
    };
    expect(eject()?.ejectedUntil).toBe(clock.now()); // (advanced to its end)
    const second = eject();
    expect(second && second.ejectedUntil - second.ejectedAt).toBe(50_000); // 2 × 30 s, capped at 50 s
    clock.advance(50_001);
    const fresh = eject();
    expect(fresh && [fresh.ejections, fresh.ejectedUntil - fresh.ejectedAt]).toEqual([1, BASE]);
  });

  it("never ejects more than maxEjectedPercent of the peers; a held-back peer is ejected once there is room", () => {
    const { clock, tracker, expire, complete } = setup({ baseEjectionMs: BASE, maxEjectedPercent: 50 });
    const ids = ["a", "b", "c", "d"];
    for (const id of ids) complete(id); // the fleet: four known peers
    for (const id of ids) times(5, () => expire(id));
    const ejected = () => ids.filter((id) => tracker.ejection(id) !== undefined);
    expect(ejected()).toEqual(["a", "b"]); // 50 % of 4
    expire("c");
    expect(ejected()).toEqual(["a", "b"]);
    clock.advance(BASE);
    expect(ejected()).toEqual([]);
    expire("c"); // its run went on while held back
    expect(ejected()).toEqual(["c"]);
  });

  it("ejects at least one of two peers even below one peer's share, but never a sole peer", () => {
    const two = setup({ maxEjectedPercent: 10 });
    two.complete("good");
    times(5, () => two.expire("bad"));
    expect(two.tracker.ejection("bad")).toBeDefined();

    const sole = setup();
    times(20, () => sole.expire("only"));
    expect(sole.tracker.ejection("only")).toBeUndefined();
    expect(sole.tracker.isPeerEligible("only")).toBe(true);
  });

  it("is off without the option and with maxEjectedPercent 0", () => {
    for (const options of [null, { maxEjectedPercent: 0 }]) {
      const { tracker, expire, complete } = setup(options);
      complete("good");
      times(10, () => expire("bad"));
      expect(tracker.ejection("bad")).toBeUndefined();
      expect(tracker.isPeerEligible("bad")).toBe(true);
      expect(tracker.stats().ejections).toBe(0);
    }
  });

  it("refuses ejection options out of range with resourcelease.options.invalid", () => {
    const bad: PeerEjectionOptions[] = [
      { consecutiveExpiries: 0 },
      { consecutiveExpiries: 1.5 },
      { baseEjectionMs: 0 },
      { baseEjectionMs: 10_000, maxEjectionMs: 5_000 },
      { maxEjectedPercent: 101 },
    ];
    for (const ejection of bad) {
      let caught: unknown;
      try {
        new PeerLeaseHealthTracker({ ejection });
      } catch (err) {
        caught = err;
      }
      expect(isOmniRelayError(caught) && caught.code, JSON.stringify(ejection)).toBe("resourcelease.options.invalid");
    }
  });

  it("choosers skip an ejected peer and pick it again once it is back", async () => {
    const { clock, tracker, expire, complete } = setup();
    const list = new PeerList();
    for (const id of ["good", "bad"]) list.add(new BasicPeer({ id }));
    complete("good");
    times(5, () => expire("bad"));
    const chooser = new RoundRobinPeerChooser({ peers: list, health: tracker, clock });
    const picks: string[] = [];
    for (let i = 0; i < 4; i++) {
      const lease = await chooser.acquire();
      picks.push(lease.peer.id);
      lease.release(true);
    }
    expect(picks).toEqual(["good", "good", "good", "good"]);
    expect(chooser.rejections().unhealthy).toBe(4);
    clock.advance(BASE);
    const back = new Set<string>();
    for (let i = 0; i < 2; i++) {
      const lease = await chooser.acquire();
      back.add(lease.peer.id);
      lease.release(true);
    }
    expect(back).toEqual(new Set(["good", "bad"]));
  });
});
