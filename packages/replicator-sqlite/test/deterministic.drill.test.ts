import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { DeterministicResourceLeaseCoordinator } from "@omnirelay/core/deterministic";
import { encodeReplicationEvent } from "@omnirelay/core/wire";
import { describe, expect, it } from "vitest";
import { SqliteDeterministicStateStore } from "../src/index.js";
import { built, prng, start } from "./drill-helpers.js";
import { eventsAt, item, tempDir } from "./helpers.js";

describe("kill -9 drill: deterministic capture of a SQLite-backed dispatcher", () => {
  it("records every committed event exactly once across SIGKILLs and replays", async () => {
    expect(existsSync(built), "build the package first (pnpm build)").toBe(true);
    const dir = tempDir();
    const logPath = join(dir, "log.db");
    const statePath = join(dir, "state.db");
    const effects = join(dir, "effects.txt");
    const rand = prng(Date.now() % 1_000_000);
    for (let round = 0; round < 6; round++) {
      const d = await start(logPath, statePath, effects);
      let alive = true;
      const load = (async () => {
        let n = 0;
        while (alive) {
          try {
            await d.client.enqueue(item(`${round}-${n++}`));
            const [g] = await d.client.lease({ peerId: "w" });
            if (g && rand() < 0.7) await d.client.complete(g.ownershipToken);
          } catch (error) {
            if (alive) throw error;
          }
        }
      })();
      await new Promise((resolve) => setTimeout(resolve, 60 + Math.floor(rand() * 200)));
      alive = false;
      d.child.kill("SIGKILL");
      await d.exited;
      await load;
      await d.client.close();
    }
    // A last start replays the whole log through the coordinator and records whatever the kills left unrecorded.
    const final = await start(logPath, statePath, effects);
    final.child.kill("SIGKILL");
    await final.exited;
    await final.client.close();

    const events = await eventsAt(logPath);
    expect(events.length).toBeGreaterThan(50);

    await using store = await SqliteDeterministicStateStore.open({ path: statePath });
    // Each committed event has exactly its own effect (no uncommitted event was recorded under a reused number).
    for (const e of events) {
      const effect = await store.get(`resourcelease.replication/seq/${e.sequenceNumber}`);
      expect(effect?.kind, `event ${e.sequenceNumber}`).toBe("omnirelay.effect");
      expect(JSON.parse(new TextDecoder().decode(effect!.payload))).toEqual(encodeReplicationEvent(e));
    }
    expect(store.count()).toBe(2 * events.length); // one version gate + one effect per event, nothing more

    // The side effect ran at most once per event.
    const ran = readFileSync(effects, "utf8").trim().split("\n").map(Number);
    expect(new Set(ran).size).toBe(ran.length);
    expect(ran.every((seq) => seq >= 1 && seq <= events.length)).toBe(true);

    // Replaying the whole log again records nothing twice.
    const coordinator = new DeterministicResourceLeaseCoordinator({ stateStore: store });
    for (const e of events) expect((await coordinator.record(e)).recorded).toBe(false);
  }, 60_000);
});
