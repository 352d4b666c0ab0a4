import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { FileSystemResourceLeaseObjectStore } from "../src/fs/index.js";
import { ObjectStorageEventReader, ObjectStorageResourceLeaseReplicator } from "../src/index.js";
import { collect } from "./events.js";
import { bundleFixture } from "./fixtures/bundle.js";

// Kill -9 drill: a writer process publishing to a filesystem log (a checkpoint after every publish) is killed at
// random moments, also between a segment and its checkpoint. Every time, the log must reopen — the check that the
// store holds the checkpoint's lastSequence must never refuse what a crash legitimately leaves — with every
// acknowledged event, no gap, and the checkpoint at or behind the segments.

const ROUNDS = Number(process.env.KILL9_ROUNDS ?? 12);
let bundle: string;
let script: string;
let root: string;

beforeAll(async () => {
  bundle = await mkdtemp(join(tmpdir(), "omnirelay-os-kill9-bundle-"));
  root = await mkdtemp(join(tmpdir(), "omnirelay-os-kill9-"));
  script = await bundleFixture("publish-child", bundle);
});
afterAll(async () => {
  for (const folder of [bundle, root]) if (folder) await rm(folder, { recursive: true, force: true });
});

/** Small deterministic PRNG (mulberry32), seeded per run and named in failure messages. */
function prng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Runs the writer until it has acknowledged `acks` publishes, kills it `delayMs` later; returns the last ack. */
async function runAndKill(acks: number, delayMs: number): Promise<number> {
  const child: ChildProcess = spawn(process.execPath, [script, root], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  onTestFinished(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  });
  let stderr = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  // "close", not "exit": every line the writer printed before it died has been read by then.
  const exited = new Promise<string | null>((resolve) => child.once("close", (_, signal) => resolve(signal)));
  let last = -1;
  let seen = 0;
  await new Promise<void>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    lines.on("line", (line) => {
      last = Number(line);
      if (++seen === acks + 1) {
        // The kill lands somewhere in the next publish: a segment put, the checkpoint put, or between them.
        setTimeout(() => child.kill("SIGKILL"), delayMs);
        resolve();
      }
    });
    exited.then(() => reject(new Error(`writer exited before ${acks} acks: ${stderr}`)));
  });
  expect(await exited).toBe("SIGKILL");
  return last;
}

describe("object-storage kill -9 drill: a writer killed at any moment leaves a log that reopens whole", () => {
  it(`reopens after ${ROUNDS} SIGKILLs with every acknowledged event and the checkpoint never ahead`, async () => {
    const seed = Date.now() % 1_000_000;
    const rand = prng(seed);
    const options = { keyPrefix: "k/" };
    for (let round = 0; round < ROUNDS; round++) {
      const acked = await runAndKill(1 + Math.floor(rand() * 25), Math.floor(rand() * 3));
      const store = new FileSystemResourceLeaseObjectStore({ rootDirectory: root });
      const log = await ObjectStorageResourceLeaseReplicator.open(store, options).catch((error: unknown) => {
        throw new Error(`round ${round} (seed ${seed}): the log does not reopen: ${String(error)}`);
      });
      const last = await log.lastSequence();
      expect(last, `round ${round} (seed ${seed})`).toBeGreaterThanOrEqual(acked);
      const events = await collect(log.read(1));
      expect(
        events.map((e) => e.sequenceNumber),
        `round ${round} (seed ${seed})`,
      ).toEqual(Array.from({ length: last }, (_, i) => i + 1));
      const checkpoint = JSON.parse(await readFile(join(root, "k", "checkpoint.json"), "utf8")) as {
        lastSequence: number;
      };
      expect(checkpoint.lastSequence, `round ${round} (seed ${seed})`).toBeLessThanOrEqual(last);
      const entries = await collect(new ObjectStorageEventReader({ store, keyPrefix: "k/" }).entries());
      expect(entries.filter((e) => e.kind !== "event")).toEqual([]);
      await log.close(); // nothing published: the next round's writer resumes from what the kill left
    }
  }, 120_000);
});
