import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { built, start } from "./drill-helpers.js";
import { eventsAt, item, tempDb } from "./helpers.js";

const EVERY = 10_000; // the shortest interval a schedule may have

/** Resolves at `at` (wall clock) plus `ms`. */
const until = (at: number, ms = 0) => new Promise((resolve) => setTimeout(resolve, Math.max(0, at + ms - Date.now())));

describe("kill -9 in the middle of a schedule's slot", () => {
  it("fires every slot exactly once across SIGKILLs at a slot's moment (backfill all)", async () => {
    expect(existsSync(built), "build the package first (pnpm build): the fixture runs dist/index.js").toBe(true);
    const path = tempDb("schedule-drill.db");
    let node = await start(path);
    const set = await node.client.setSchedule({
      id: "tick",
      cron: "*/10 * * * * *",
      payload: item("tick"),
      backfill: "all",
      backfillWindowMs: 60_000,
    });
    const first = set.nextSlotAt!;
    // Two kills, each 3 ms after a slot's time (while it fires and commits), each followed by a restart at once.
    for (const slot of [first + EVERY, first + 2 * EVERY]) {
      await until(slot, 3);
      node.child.kill("SIGKILL");
      await node.exited;
      await node.client.close();
      node = await start(path);
    }
    await until(first + 3 * EVERY, 500); // one more slot on time after the last restart
    node.child.kill("SIGKILL");
    await node.exited;
    await node.client.close();

    const events = await eventsAt(path);
    const slots = events.filter((e) => e.eventType === "Enqueue").map((e) => e.item!.payload.requestId!);
    expect(new Set(slots).size, slots.join("\n")).toBe(slots.length); // no slot twice
    const expected = [0, 1, 2, 3].map((n) => `schedule:tick:${new Date(first + n * EVERY).toISOString()}`);
    expect(slots).toEqual(expected); // and none missed: the killed slot fired before or after the restart
  }, 60_000);
});
