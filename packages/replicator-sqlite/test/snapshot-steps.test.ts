import { ResourceLeaseQueue } from "@omnirelay/core";
import { describe, expect, it } from "vitest";
import { type SnapshotStore, writeSnapshotInSteps } from "../src/log-snapshots.js";
import { item } from "./helpers.js";

// A snapshot written in steps hands each step's parts to the writer thread and goes on encoding the next while the
// thread writes them: never more than the step being written and the one after it, and the head only once every part
// is written.

async function bigSnapshot(items: number) {
  const queue = new ResourceLeaseQueue({ capacity: items });
  for (let i = 0; i < items; i += 1000) {
    await queue.enqueueMany(Array.from({ length: Math.min(1000, items - i) }, (_, k) => item(i + k)));
  }
  return queue.snapshot();
}

/** A store whose part writes settle only when the test says, recording what it was asked. */
function slowStore() {
  const steps: Array<{ first: number; parts: number; settle: (error?: Error) => void }> = [];
  let writing = 0;
  let mostWriting = 0;
  const finished: number[] = [];
  const store: SnapshotStore = {
    store: () => {
      throw new Error("not used");
    },
    clear: () => {},
    putParts: (_seq, first, parts) =>
      new Promise<void>((resolve, reject) => {
        writing++;
        mostWriting = Math.max(mostWriting, writing);
        steps.push({
          first,
          parts: parts.length,
          settle: (error) => {
            writing--;
            if (error) reject(error);
            else resolve();
          },
        });
      }),
    finish: (_snapshot, parts) => {
      expect(writing).toBe(0); // the head is written after every part
      finished.push(parts);
    },
  };
  return { store, steps, finished, mostWriting: () => mostWriting };
}

/** Settles each step's write a few turns after it was asked for, until `done`. */
async function thread(steps: ReturnType<typeof slowStore>["steps"], done: Promise<unknown>, failAt?: number) {
  let next = 0;
  let over = false;
  void done.then(
    () => (over = true),
    () => (over = true),
  );
  while (!over) {
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    const step = steps[next];
    if (step) {
      step.settle(next === failAt ? new Error("disk full") : undefined);
      next++;
    }
  }
}

describe("a snapshot written in steps", () => {
  it("keeps at most two steps with the thread, and writes the head after the last part", async () => {
    const snapshot = await bigSnapshot(50_000);
    const s = slowStore();
    const done = writeSnapshotInSteps(s.store, snapshot, { still: () => true, pause: () => Promise.resolve() });
    await thread(s.steps, done);
    expect(await done).toBe(true);
    expect(s.steps.length).toBeGreaterThan(2);
    expect(s.mostWriting()).toBe(2);
    // Consecutive parts, none twice, all of them in the head.
    let first = 0;
    for (const step of s.steps) {
      expect(step.first).toBe(first);
      first += step.parts;
    }
    expect(s.finished).toEqual([first]);
  }, 30_000);

  it("fails with the first failed step's error, writes no head, and leaves no rejection unobserved", async () => {
    const snapshot = await bigSnapshot(50_000);
    const s = slowStore();
    const done = writeSnapshotInSteps(s.store, snapshot, { still: () => true, pause: () => Promise.resolve() });
    await thread(s.steps, done, 1);
    await expect(done).rejects.toThrow("disk full");
    expect(s.finished).toEqual([]);
    // The step sent after the failed one settles too (failed here), and nobody waits for it: no unhandled rejection.
    s.steps[2]?.settle(new Error("after"));
    await new Promise((r) => setImmediate(r));
  }, 30_000);
});
