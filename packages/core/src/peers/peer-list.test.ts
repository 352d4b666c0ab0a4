import { describe, expect, it } from "vitest";
import { isOmniRelayError } from "../errors/omnirelay-error.js";
import { BasicPeer } from "./peer.js";
import { PeerList } from "./peer-list.js";

function optionError(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    if (isOmniRelayError(err) && err.code === "resourcelease.options.invalid") return err.metadata.option;
    throw err;
  }
  return undefined;
}

describe("BasicPeer", () => {
  it("validates its options", () => {
    expect(optionError(() => new BasicPeer({ id: " " }))).toBe("id");
    expect(optionError(() => new BasicPeer({ id: "a", maxConcurrency: 0 }))).toBe("maxConcurrency");
    expect(optionError(() => new BasicPeer({ id: "a", maxConcurrency: 1.5 }))).toBe("maxConcurrency");
    expect(optionError(() => new BasicPeer({ id: "a" }))).toBeUndefined();
  });

  it("limits concurrency and tracks inflight calls and outcomes", () => {
    const peer = new BasicPeer({ id: "a", address: "http://127.0.0.1:1", maxConcurrency: 2 });
    expect(peer.address).toBe("http://127.0.0.1:1");
    expect(peer.tryAcquire()).toBe(true);
    expect(peer.tryAcquire()).toBe(true);
    expect(peer.tryAcquire()).toBe(false);
    expect(peer.status).toEqual({ state: "available", inflight: 2 });
    peer.release(true);
    peer.release(false);
    peer.release(false); // nothing in flight: ignored
    expect(peer.status.inflight).toBe(0);
    expect(peer.outcomes).toEqual({ successes: 1, failures: 1 });
  });

  it("refuses slots unless available", () => {
    const peer = new BasicPeer({ id: "a", state: "unknown" });
    expect(peer.tryAcquire()).toBe(false);
    peer.setState("available");
    expect(peer.tryAcquire()).toBe(true);
    peer.setState("unavailable");
    expect(peer.tryAcquire()).toBe(false);
  });
});

describe("PeerList", () => {
  it("adds, gets, lists in order and removes peers; rejects duplicate ids", () => {
    const a = new BasicPeer({ id: "a" });
    const b = new BasicPeer({ id: "b" });
    const list = new PeerList([a, b]);
    expect(list.peers()).toEqual([a, b]);
    expect(list.get("b")).toBe(b);
    expect(() => list.add(new BasicPeer({ id: "a" }))).toThrowError(
      expect.objectContaining({ status: "already-exists", code: "peers.duplicate_peer" }),
    );
    expect(list.remove("a")).toBe(true);
    expect(list.remove("a")).toBe(false);
    expect(list.peers()).toEqual([b]);
    expect(list.size).toBe(1);
  });

  it("wakes waiters once when a peer is added, frees a slot or changes state", () => {
    const list = new PeerList();
    let wakes = 0;
    list.onNextChange(() => wakes++);
    const a = new BasicPeer({ id: "a", maxConcurrency: 1 });
    list.add(a);
    expect(wakes).toBe(1);
    a.tryAcquire();
    a.release(true);
    expect(wakes).toBe(1); // one-shot
    list.onNextChange(() => wakes++);
    a.tryAcquire();
    a.release(true);
    expect(wakes).toBe(2);
    list.onNextChange(() => wakes++);
    a.setState("unavailable");
    expect(wakes).toBe(3);
  });

  it("stops listening to a removed peer and lets a waiter cancel", () => {
    const a = new BasicPeer({ id: "a" });
    const list = new PeerList([a]);
    let wakes = 0;
    list.remove("a");
    list.onNextChange(() => wakes++);
    a.setState("unavailable");
    expect(wakes).toBe(0);
    const cancel = list.onNextChange(() => wakes++);
    cancel();
    list.notifyChanged();
    expect(wakes).toBe(1); // only the first waiter, which was still registered
  });

  it("keeps waking the others when one waiter throws", () => {
    const list = new PeerList();
    let woke = false;
    list.onNextChange(() => {
      throw new Error("bad waiter");
    });
    list.onNextChange(() => {
      woke = true;
    });
    expect(() => list.notifyChanged()).not.toThrow();
    expect(woke).toBe(true);
  });
});
