import { afterAll, describe, expect, it } from "vitest";
import { syncFromVarz } from "../src/describe.js";
import { JetStreamResourceLeaseEventLog } from "../src/index.js";
import { testStream } from "./helpers.js";
import { startNatsServer } from "./nats-server.js";

const js = testStream();
afterAll(() => js.remove());

describe("describe(): server version, replicas and the sync setting", () => {
  it("on the machine's NATS (no monitoring port) it reports the version and, for a 2.9 server, no sync per write", async () => {
    await using log = await js.open("describe");
    const d = await log.describe();
    expect(d.serverVersion).toMatch(/^\d+\.\d+\.\d+/);
    expect(d.stream).toBe(js.stream);
    expect(d.replicas).toBe(1);
    expect(d.subject).toBe(`${js.subjectPrefix}.describe`);
    if (d.serverVersion.startsWith("2.9.")) {
      expect(d.sync).toMatchObject({ syncEveryWrite: false, syncIntervalMs: 120_000, source: "server-version" });
    } else {
      expect(d.sync).toMatchObject({ syncEveryWrite: "unknown", source: "unknown" });
    }
  });

  it("reads a server's /varz when given its monitoring port", async () => {
    const server = await startNatsServer();
    try {
      await using log = await JetStreamResourceLeaseEventLog.open({
        servers: server.url,
        shard: "describe",
        monitorUrl: server.monitorUrl,
      });
      const d = await log.describe();
      expect(d.sync.source).toBe("varz");
      // Debian's 2.9 has no sync setting; its /varz says nothing, which is the 2-minute default.
      expect(d.sync.syncEveryWrite).toBe(false);
      expect(d.sync.syncIntervalMs).toBe(120_000);
      expect(d.serverName).not.toBe("unknown");
    } finally {
      await server.stop();
    }
  });

  it("a monitoring port that does not answer falls back to the version and says why", async () => {
    await using log = await js.open("describe-down", { monitorUrl: "http://127.0.0.1:9" });
    const d = await log.describe();
    expect(d.sync.source).not.toBe("varz");
    expect(d.sync.detail).toContain("did not answer");
  });

  it("reads the 2.10+ fields of /varz: sync_always and sync_interval (nanoseconds)", () => {
    expect(syncFromVarz({ jetstream: { config: { sync_always: true } } }).syncEveryWrite).toBe(true);
    expect(syncFromVarz({ jetstream: { config: { sync_interval: 5_000_000_000 } } })).toMatchObject({
      syncEveryWrite: false,
      syncIntervalMs: 5000,
    });
    expect(syncFromVarz({}).syncEveryWrite).toBe("unknown");
  });
});
