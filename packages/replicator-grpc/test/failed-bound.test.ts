import { ErrorCodes, type Logger, OmniRelayError } from "@omnirelay/core";
import { afterEach, describe, expect, it } from "vitest";
import {
  GrpcReplicationHub,
  InMemoryReplicationHubStore,
  type ReplicationHubLog,
  type ReplicationSourceId,
  sourceKey,
} from "../src/index.js";
import { events } from "./helpers.js";
import { rawClient, rawCredentials, rawPublish } from "./raw.js";

// A caller that names made-up source ids the store refuses (the app's `--max-sources` cap refuses every new one):
// each refusal used to stay in the hub's failed-sources record, in its metrics and ListSources, and write one error
// line, forever. 20,000 such ids took the app from 95 to 366 MiB, 2.8 MB of /metrics and 8.9 MB of stderr.

const RESOURCE_EXHAUSTED = 8;

const cleanup: Array<() => Promise<unknown> | unknown> = [];
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn();
});

/** Refuses to create any new log (as a store at its source cap), and refuses `damaged` sources as corrupt. */
class CappedStore extends InMemoryReplicationHubStore {
  readonly damaged = new Set<string>();
  private readonly known = new Set<string>();

  /** Creates the log of `source` with `count` events, bypassing the cap. */
  async seed(source: ReplicationSourceId, count: number): Promise<void> {
    this.known.add(sourceKey(source));
    await (await super.open(source)).publish(events(1, count));
  }

  override async open(source: ReplicationSourceId): Promise<ReplicationHubLog> {
    const key = sourceKey(source);
    if (this.damaged.has(key)) {
      throw new OmniRelayError({ status: "data-loss", code: ErrorCodes.sqlite.corrupt, message: `${key} is damaged.` });
    }
    if (!this.known.has(key)) {
      throw new OmniRelayError({
        status: "resource-exhausted",
        code: ErrorCodes.replicationHub.storeFailed,
        message: `Cannot create a log for ${key}: the store holds its most sources.`,
        metadata: { "replication.source": key },
      });
    }
    return super.open(source);
  }
}

function recordingLogger() {
  const errors: Array<Record<string, unknown>> = [];
  const logger: Logger = {
    debug: () => undefined,
    info: () => undefined,
    warn: () => undefined,
    error: (obj: object | string) => {
      errors.push(typeof obj === "string" ? { msg: obj } : (obj as Record<string, unknown>));
    },
  };
  return { logger, errors };
}

/** Sends a hello for each id in turn over one connection and waits for each refusal. */
async function refuse(address: string, ids: readonly string[]): Promise<void> {
  const client = rawClient(address, rawCredentials());
  cleanup.push(() => client.close());
  for (const id of ids) {
    const raw = rawPublish(client);
    raw.hello(id);
    const end = await raw.ended;
    raw.call.cancel();
    expect(end.code).toBe(RESOURCE_EXHAUSTED);
  }
}

const failedKeys = (hub: GrpcReplicationHub) =>
  hub
    .sourceStatuses()
    .filter((s) => s.failed)
    .map(sourceKey);

describe("GrpcReplicationHub failed-sources record under a flood of refused source ids", () => {
  it("keeps at most maxFailedSources refused ids (least recently named evicted, counted), and every damaged log", async () => {
    const store = new CappedStore();
    await store.seed({ nodeId: "good", shard: "" }, 3);
    await store.seed({ nodeId: "damaged", shard: "" }, 3);
    store.damaged.add("damaged");
    const hub = new GrpcReplicationHub({
      store,
      auth: { allowUnauthenticated: true },
      shutdownGraceMs: 100,
      failedSourceRetryMs: 60_000,
      maxFailedSources: 5,
    });
    cleanup.push(() => hub.close());
    await hub.start();
    const address = `127.0.0.1:${hub.port}`;

    const ids = Array.from({ length: 30 }, (_, i) => `made-up-${String(i).padStart(2, "0")}`);
    await refuse(address, ids);
    // Naming an old one again makes it the most recent: the next eviction takes made-up-26 instead.
    await refuse(address, ["made-up-25", "made-up-30"]);

    expect(failedKeys(hub)).toEqual(["damaged", "made-up-25", "made-up-27", "made-up-28", "made-up-29", "made-up-30"]);
    expect(hub.sourceStatuses().find((s) => s.nodeId === "good")?.lastSequence).toBe(3);
    expect(hub.failedSourcesEvicted).toBe(26);
    const metrics = hub.metrics();
    expect(metrics).toContain("omnirelay_replication_hub_failed_sources_evicted_total 26");
    expect(metrics.match(/^omnirelay_replication_hub_source_failed\{.*\} 1$/gm)).toHaveLength(6);
    expect(metrics).not.toContain('node_id="made-up-00"');

    // An evicted id is simply tried again: refused with the store's error, not served as if it had a log.
    await refuse(address, ["made-up-00"]);
    expect(failedKeys(hub)).toContain("made-up-00");
    expect(failedKeys(hub)).toContain("damaged");
    expect(hub.failedSourcesEvicted).toBe(27);
  });

  it("writes at most 10 refusal lines a minute and sums the rest up in one line", async () => {
    const store = new CappedStore();
    await store.seed({ nodeId: "damaged", shard: "" }, 1);
    store.damaged.add("damaged");
    const { logger, errors } = recordingLogger();
    const hub = new GrpcReplicationHub({ store, auth: { allowUnauthenticated: true }, shutdownGraceMs: 100, logger });
    await hub.start();
    // The damaged log is always reported, whatever the budget.
    expect(errors.map((e) => e.source)).toEqual(["damaged"]);

    await refuse(
      `127.0.0.1:${hub.port}`,
      Array.from({ length: 40 }, (_, i) => `made-up-${i}`),
    );
    const perSource = errors.filter((e) => typeof e.source === "string");
    expect(perSource).toHaveLength(11);
    expect(perSource.at(-1)?.source).toBe("made-up-9");

    // The rest of the window is summed up when it ends (here: when the hub closes), with a few of the ids.
    await hub.close();
    const summaries = errors.filter((e) => e.suppressed !== undefined);
    expect(summaries).toHaveLength(1);
    expect(summaries[0]).toMatchObject({
      suppressed: 30,
      examples: ["made-up-10", "made-up-11", "made-up-12", "made-up-13", "made-up-14"],
    });
    expect(errors).toHaveLength(12);
  });

  it("refuses a maxFailedSources below 1", () => {
    expect(
      () =>
        new GrpcReplicationHub({
          store: new InMemoryReplicationHubStore(),
          auth: { allowUnauthenticated: true },
          maxFailedSources: 0,
        }),
    ).toThrow(
      expect.objectContaining({
        code: ErrorCodes.resourceLease.optionsInvalid,
        metadata: { option: "maxFailedSources" },
      }),
    );
  });
});
