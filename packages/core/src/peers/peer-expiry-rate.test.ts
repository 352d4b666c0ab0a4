import { describe, expect, it } from "vitest";
import { isOmniRelayError } from "../errors/omnirelay-error.js";
import { FakeClock } from "../testing/fake-clock.js";
import type { PeerEjectionOptions } from "./peer-ejection.js";
import { PeerLeaseHealthTracker } from "./peer-lease-health-tracker.js";
import { eventFactory, token } from "./test-helpers.js";

const INTERVAL = 60_000;
const LEASE = 10_000;

function setup(ejection: PeerEjectionOptions = { expiryRate: { intervalMs: INTERVAL } }, interval = INTERVAL) {
  const clock = new FakeClock();
  const tracker = new PeerLeaseHealthTracker({ clock, gracePeriodMs: 10 * 60_000, ejection });
  const event = eventFactory(clock);
  let next = 0;
  const grant = (peerId: string) => {
    const t = token(++next);
    tracker.observe(event("LeaseGranted", { peerId, ownership: t, leaseExpiresAt: clock.now() + LEASE }));
    return t;
  };
  const expire = (peerId: string) => tracker.observe(event("LeaseExpired", { peerId, ownership: grant(peerId) }));
  const complete = (peerId: string) => tracker.observe(event("Completed", { peerId, ownership: grant(peerId) }));
  /** A lease of `peerId` with one heartbeat after `share` of its time; then `end` (Completed or LeaseExpired). */
  const heartbeatAt = (peerId: string, share: number, end: "Completed" | "LeaseExpired" = "Completed") => {
    const t = grant(peerId);
    clock.advance(share * LEASE);
    tracker.observe(event("Heartbeat", { peerId, ownership: t, leaseExpiresAt: clock.now() + LEASE }));
    tracker.observe(event(end, { peerId, ownership: t }));
  };
  /** Runs `f` per peer, round-robin, `rounds` times: outcomes interleave as a fleet's do. */
  const rounds = (n: number, f: (peerId: string, round: number) => void, peers = ["a", "b", "c", "d"]) => {
    for (let r = 0; r < n; r++) for (const p of peers) f(p, r);
  };
  /** Moves past the interval and records one good outcome, which closes it. */
  const closeInterval = () => {
    clock.advance(interval);
    complete("a");
  };
  return { clock, tracker, expire, complete, heartbeatAt, rounds, closeInterval };
}

describe("outlier ejection by expiry rate against the fleet", () => {
  it("ejects a peer whose expiries far exceed the fleet's when the interval closes, with no run of expiries", () => {
    const { tracker, expire, complete, rounds, closeInterval } = setup();
    // a, b, c: 1 expiry in 20; d: every other lease expires (never two in a row: the consecutive rule stays quiet).
    rounds(20, (p, r) => ((p === "d" ? r % 2 === 0 : r === 7) ? expire(p) : complete(p)));
    expect(tracker.ejection("d")).toBeUndefined(); // judged only when the interval closes
    closeInterval();
    expect(tracker.ejection("d")).toMatchObject({ reason: "expiry-rate", expiryRate: 0.5, fleetExpiryRate: 0.05 });
    for (const p of ["a", "b", "c"]) expect(tracker.ejection(p)).toBeUndefined();
    expect(tracker.isPeerEligible("d")).toBe(false);
    expect(tracker.stats().ejections).toBe(1);
  });

  it("a fleet that is bad as a whole ejects nobody: the rule looks for outliers, not load", () => {
    const { tracker, expire, complete, rounds, closeInterval } = setup();
    rounds(20, (p, r) => (r % 2 === 0 ? expire(p) : complete(p)));
    closeInterval();
    for (const p of ["a", "b", "c", "d"]) expect(tracker.ejection(p)).toBeUndefined();
  });

  it("judges nobody without enough outcomes or peers, and not below the minimum rate", () => {
    const few = setup();
    few.rounds(20, (p, r) => (p !== "d" ? few.complete(p) : r < 9 && r % 2 === 0 ? few.expire(p) : undefined));
    few.closeInterval(); // d had 5 outcomes, under minimumOutcomes (10)
    expect(few.tracker.ejection("d")).toBeUndefined();

    const pair = setup();
    pair.rounds(20, (p, r) => (p === "d" && r % 2 === 0 ? pair.expire(p) : pair.complete(p)), ["a", "d"]);
    pair.closeInterval(); // two peers, under minimumPeers (3)
    expect(pair.tracker.ejection("d")).toBeUndefined();

    const mild = setup();
    // d: 4 expiries in 20 (20%), the fleet none: far above the fleet, but under minimumRate (25%).
    mild.rounds(20, (p, r) => (p === "d" && r % 5 === 0 ? mild.expire(p) : mild.complete(p)));
    mild.closeInterval();
    expect(mild.tracker.ejection("d")).toBeUndefined();
  });

  it("counts late heartbeats as bad outcomes: a worker that always renews at the last moment is ejected", () => {
    const hour = 3_600_000; // the leases below take 10 × 4 × 5–9 s: one interval holds them all
    const { tracker, heartbeatAt, rounds, closeInterval } = setup({ expiryRate: { intervalMs: hour } }, hour);
    rounds(10, (p) => heartbeatAt(p, p === "d" ? 0.9 : 0.5));
    closeInterval();
    expect(tracker.ejection("d")).toMatchObject({ reason: "expiry-rate", expiryRate: 0.5, fleetExpiryRate: 0 });
    expect(tracker.ejection("a")).toBeUndefined();
  });

  it("a late heartbeat does not end a run of expiries; a timely one does", () => {
    const late = setup({ expiryRate: false });
    late.complete("other"); // a sole peer is never ejected
    for (let i = 0; i < 4; i++) late.expire("w");
    late.heartbeatAt("w", 0.9, "LeaseExpired"); // renewed at the last moment, then let expire: the fifth in a row
    expect(late.tracker.ejection("w")).toMatchObject({ reason: "consecutive-expiries", consecutiveExpiries: 5 });

    const timely = setup({ expiryRate: false });
    timely.complete("other");
    for (let i = 0; i < 4; i++) timely.expire("w");
    timely.heartbeatAt("w", 0.5, "LeaseExpired"); // a timely heartbeat ended the run before this expiry
    expect(timely.tracker.ejection("w")).toBeUndefined();
  });

  it("expiryRate: false turns the rule off", () => {
    const { tracker, expire, complete, rounds, closeInterval } = setup({ expiryRate: false });
    rounds(20, (p, r) => (p === "d" && r % 2 === 0 ? expire(p) : complete(p)));
    closeInterval();
    expect(tracker.ejection("d")).toBeUndefined();
  });

  it("refuses out-of-range rule options with resourcelease.options.invalid", () => {
    const bad = [{ factor: 0.5 }, { minimumPeers: 1 }, { minimumRate: 1.5 }, { intervalMs: 0 }];
    for (const expiryRate of bad) {
      let caught: unknown;
      try {
        new PeerLeaseHealthTracker({ ejection: { expiryRate } });
      } catch (err) {
        caught = err;
      }
      expect(isOmniRelayError(caught) && caught.code, JSON.stringify(expiryRate)).toBe("resourcelease.options.invalid");
    }
    expect(() => new PeerLeaseHealthTracker({ ejection: { lateHeartbeatShare: 1.5 } })).toThrow(/lateHeartbeatShare/);
  });
});
