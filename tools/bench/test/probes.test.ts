import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";

// probes/enqueue-rtt.mjs is what docs/performance.md's enqueue splits were measured with: it must run in each mode,
// over both transports, and report figures that hang together (nothing here about speed).
const run = promisify(execFile);
const probe = join(import.meta.dirname, "..", "probes", "enqueue-rtt.mjs");

async function measure(args: string[]): Promise<Record<string, number | string>> {
  const { stdout } = await run(process.execPath, [probe, ...args], { timeout: 60_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1) as string);
}

describe("probes/enqueue-rtt.mjs", () => {
  it.each(["http", "grpc"])(
    "paces single enqueues over %s to a SQLite log and splits off the dispatcher's share",
    async (transport) => {
      const r = await measure(["--transport", transport, "--count", "400", "--rate", "400"]);
      expect(r).toMatchObject({ transport, log: "sqlite", durability: "batched", mode: "paced", items: 300 });
      expect(r.p50).toBeGreaterThan(0);
      expect(r.p50).toBeLessThanOrEqual(r.p90 as number);
      expect(r.p90).toBeLessThanOrEqual(r.p99 as number);
      // Every dispatch is inside some item's round trip, so its median cannot be the longer one.
      expect(r.dispatchP50).toBeGreaterThan(0);
      expect(r.dispatchP50).toBeLessThanOrEqual(r.p50 as number);
    },
  );

  it("runs a closed loop on an in-memory queue and charges CPU to each process", async () => {
    const r = await measure(["--mode", "closed", "--log", "memory", "--count", "4000", "--lanes", "16"]);
    expect(r).toMatchObject({ transport: "http", log: "memory", mode: "closed", items: 3000 });
    expect(r.rate).toBeGreaterThan(0);
    expect(r.serverCpuPerItemUs).toBeGreaterThan(0);
    expect(r.producerCpuPerItemUs).toBeGreaterThan(0);
    expect(r.coresBusy).toBeGreaterThan(0);
  });

  it("refuses a transport it does not know", async () => {
    await expect(measure(["--transport", "carrier-pigeon"])).rejects.toThrow(
      /--transport http\|grpc, not carrier-pigeon/,
    );
  });
});

describe("probes/item-memory.mjs and probes/engine-lifecycle.mjs", () => {
  const node = async (args: string[]) => {
    const { stdout } = await run(process.execPath, args, { timeout: 60_000 });
    return JSON.parse(stdout.trim().split("\n").at(-1) as string) as Record<string, number>;
  };

  it("counts what a queue holds per pending item, bodies apart from the heap", async () => {
    const r = await node(["--expose-gc", join(import.meta.dirname, "..", "probes", "item-memory.mjs"), "5000"]);
    expect(r.items).toBe(5000);
    // Each 200-byte body is in the ArrayBuffers (slabs), not in the V8 heap, and every item costs heap besides.
    expect(r.arrayBufferBytesPerItem).toBeGreaterThanOrEqual(200);
    expect(r.arrayBufferBytesPerItem).toBeLessThan(400);
    expect(r.heapBytesPerItem).toBeGreaterThan(0);
  });

  it("captures a snapshot view for a fraction of the heap a whole snapshot holds, and reads every body out", async () => {
    const r = await node(["--expose-gc", join(import.meta.dirname, "..", "probes", "snapshot-capture.mjs"), "20000"]);
    expect(r.items).toBe(20000);
    // A whole snapshot holds ~260 bytes per item (5 MiB here), the view's columns ~16 (~0.3 MiB).
    expect(r.snapshotHeldMiB).toBeGreaterThan(3);
    expect(r.snapshotViewHeldMiB).toBeLessThan((r.snapshotHeldMiB as number) / 4);
    expect(r.snapshotViewReadMs).toBeGreaterThan(0);
  });

  it("refuses to measure without --expose-gc (the figures would include garbage)", async () => {
    await expect(node([join(import.meta.dirname, "..", "probes", "item-memory.mjs"), "10"])).rejects.toThrow(
      /--expose-gc/,
    );
  });

  it("times enqueue → lease → complete in process and leaves nothing behind", async () => {
    const r = await node([join(import.meta.dirname, "..", "probes", "engine-lifecycle.mjs"), "50"]);
    expect(r).toMatchObject({ items: 5000, left: 0 });
    expect(r.cpuMicrosPerItem).toBeGreaterThan(0);
    expect(r.minorFaultsPerItem).toBeGreaterThanOrEqual(0);
  });

  it("writes a CPU profile of the measured rounds alone with PROFILE_OUT", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "omnirelay-engine-prof-")), "engine.cpuprofile");
    const probe = join(import.meta.dirname, "..", "probes", "engine-lifecycle.mjs");
    const { stdout } = await run(process.execPath, [probe, "50", "-", "2000"], {
      timeout: 60_000,
      env: { ...process.env, PROFILE_OUT: out },
    });
    expect(JSON.parse(stdout.trim().split("\n").at(-1) as string)).toMatchObject({ items: 5000, left: 2000 });
    const profile = JSON.parse(readFileSync(out, "utf8")) as { nodes: { callFrame: { functionName: string } }[] };
    // The rounds' own frames are in it; the fill before them is not.
    const names = new Set(profile.nodes.map((n) => n.callFrame.functionName));
    expect(names.has("round")).toBe(true);
    expect(names.has("fillQueue")).toBe(false);
    rmSync(dirname(out), { recursive: true, force: true });
  });
});

describe("probes/worker-lifecycle.mjs", () => {
  const probePath = join(import.meta.dirname, "..", "probes", "worker-lifecycle.mjs");
  const lifecycle = async (args: string[], env: NodeJS.ProcessEnv = process.env) => {
    const { stdout } = await run(process.execPath, [probePath, ...args], { timeout: 60_000, env });
    return JSON.parse(stdout.trim().split("\n").at(-1) as string) as Record<string, unknown>;
  };

  it("runs a new worker on the same queue after the first one closed, and charges CPU to each process", async () => {
    // On an in-memory queue a grant is made the moment an item is enqueued: before sessions had `stop`, the first
    // worker's closing session took the next round's first items, and this round stalled until their leases expired
    // (with 20,000 items it did every time; with 4,000, not always).
    const r = await lifecycle(["--log", "memory", "--count", "20000", "--stall-ms", "5000"]);
    expect(r).toMatchObject({ log: "memory", mode: "session", concurrency: 100, prefetch: 100, items: 20000 });
    expect(r.rate).toBeGreaterThan(0);
    expect(r.workerCpuPerItemUs).toBeGreaterThan(0);
    expect(r.dispatcherCpuPerItemUs).toBeGreaterThan(0);
  });

  it("profiles the worker's process on a SQLite log with unary calls", async () => {
    const out = join(mkdtempSync(join(tmpdir(), "omnirelay-worker-prof-")), "worker.cpuprofile");
    const args = ["--count", "1000", "--unary", "--concurrency", "10", "--profile", "cpu"];
    const r = await lifecycle(args, { ...process.env, PROFILE_OUT: out });
    expect(r).toMatchObject({ log: "sqlite", mode: "unary", concurrency: 10, items: 1000 });
    const top = r.top as Array<[string, number]>;
    expect(top.length).toBeGreaterThan(0);
    expect(top.every(([where, us]) => typeof where === "string" && us > 0)).toBe(true);
    // PROFILE_OUT: the raw profile the summary came from, with its samples.
    const profile = JSON.parse(readFileSync(out, "utf8")) as { nodes: unknown[]; samples: number[] };
    expect(profile.nodes.length).toBeGreaterThan(1);
    expect(profile.samples.length).toBeGreaterThan(0);
    rmSync(dirname(out), { recursive: true, force: true });
  });

  it("refuses a log it does not know", async () => {
    await expect(lifecycle(["--log", "floppy"])).rejects.toThrow(/--log sqlite\|memory, not floppy/);
  });
});
