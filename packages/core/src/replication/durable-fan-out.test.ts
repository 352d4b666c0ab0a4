import { describe, expect, it } from "vitest";
import type { ResourceLeaseReplicationEvent, ResourceLeaseReplicationSink } from "../contracts/events.js";
import { isOmniRelayError } from "../errors/omnirelay-error.js";
import { DurableFanOutResourceLeaseReplicator } from "./durable-fan-out.js";

const event = (n: number): ResourceLeaseReplicationEvent => ({
  sequenceNumber: n,
  eventType: "Enqueue",
  timestamp: 0,
  metadata: {},
});

function recordingSink(log: string[], name: string, fail = false): ResourceLeaseReplicationSink {
  return {
    async apply(e) {
      log.push(`${name}:${e.sequenceNumber}`);
      if (fail) throw new Error(`${name} down`);
    },
  };
}

describe("DurableFanOutResourceLeaseReplicator", () => {
  it("feeds sinks only after the primary committed, in order", async () => {
    const log: string[] = [];
    let commit!: () => void;
    const primary = {
      publish: (events: readonly ResourceLeaseReplicationEvent[]) =>
        new Promise<void>((resolve) => {
          commit = () => {
            log.push(`primary:${events.map((e) => e.sequenceNumber).join(",")}`);
            resolve();
          };
        }),
    };
    const r = new DurableFanOutResourceLeaseReplicator({ primary, requiredSinks: [recordingSink(log, "audit")] });
    const p = r.publish([event(1), event(2)]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(log).toEqual([]); // nothing reaches a sink before the commit
    commit();
    await p;
    expect(log).toEqual(["primary:1,2", "audit:1", "audit:2"]);
  });

  it("a failed primary reaches no sink; a failing required sink fails the publish; an optional one never does", async () => {
    const log: string[] = [];
    const failing = new DurableFanOutResourceLeaseReplicator({
      primary: { publish: async () => Promise.reject(new Error("disk full")) },
      requiredSinks: [recordingSink(log, "audit")],
    });
    await expect(failing.publish([event(1)])).rejects.toThrow();
    expect(log).toEqual([]);

    const required = new DurableFanOutResourceLeaseReplicator({
      primary: { publish: async () => {} },
      requiredSinks: [recordingSink(log, "hub", true)],
    });
    const err = await required.publish([event(1)]).catch((e: unknown) => e);
    expect(isOmniRelayError(err) && err.metadata["replication.stage"]).toBe("fanout.required");

    const optional = new DurableFanOutResourceLeaseReplicator({
      primary: { publish: async () => {} },
      optionalSinks: [recordingSink(log, "feed", true)],
    });
    await optional.publish([event(1)]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(optional.optionalFailures).toBe(1);
  });
});
