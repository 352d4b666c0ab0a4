/**
 * The soak's faults: the dispatcher process it kills -9 and restarts on the same data directory, a worker process it
 * partitions (its network namespace's link down, then up; SIGSTOP and SIGCONT where namespaces are not available), and
 * the ledger that proves no acknowledged item was lost across them.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { createInterface } from "node:readline";
import { setTimeout as sleep } from "node:timers/promises";
import { ErrorCodes, HttpOutbound, isOmniRelayError, ResourceLeaseClient } from "@omnirelay/core";
import { createDemoNetwork, type DemoNetwork } from "./netns.js";

/** The queue's default `maxAttempts` (the demo does not change it): a grant at this attempt is the item's last. */
export const LAST_ATTEMPT = 5;

/** The serial number in a soak item's resource id (`soak-<n>`), or -1. */
export function serialOf(resourceId: string): number {
  return resourceId.startsWith("soak-") ? Number(resourceId.slice(5)) : -1;
}

/**
 * Whether a failed complete or fail left the item in the queue: it was refused as late (fenced, or its lease is gone),
 * so the item comes back. Any other failure (the dispatcher died mid-call) may have settled it.
 */
export function refusedAsLate(error: unknown): boolean {
  if (!isOmniRelayError(error)) return false;
  const c = ErrorCodes.resourceLease;
  return error.code === c.leaseFenced || error.code === c.leaseExpired || error.code === c.leaseUnknownToken;
}

/**
 * What the soak knows of every item it enqueued, by serial number: enqueued and acknowledged, or settled — a complete
 * or a fail without requeue was attempted, or a grant was the item's last attempt (so it may be dead-lettered and
 * purged by retention). An item acknowledged and never settled must still be in the queue at the end.
 */
export class SoakLedger {
  private state = new Uint8Array(1 << 16);
  private acked = 0;

  /** The enqueue of `serial` was acknowledged. */
  enqueued(serial: number): void {
    this.grow(serial);
    if (this.state[serial] === 0) {
      this.state[serial] = 1;
      this.acked++;
    }
  }

  /** `serial` was completed, failed for good, or granted at its last attempt (acknowledged or not). */
  settled(serial: number): void {
    if (serial < 0) return;
    this.grow(serial);
    this.state[serial] = 2;
  }

  /** Acknowledged enqueues. */
  get acknowledged(): number {
    return this.acked;
  }

  /** Serial numbers acknowledged and never settled. */
  unsettled(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.state.length; i++) if (this.state[i] === 1) out.push(i);
    return out;
  }

  private grow(serial: number): void {
    if (serial < this.state.length) return;
    const next = new Uint8Array(Math.max(serial + 1, this.state.length * 2));
    next.set(this.state);
    this.state = next;
  }
}

/** How the soak cuts its worker off: `netns` brings the link of the worker's network namespace down (a real
 * partition: its calls fail or hang, its leases run out), `sigstop` freezes the process instead. */
export type PartitionBy = "netns" | "sigstop";

/**
 * The network of the soak's partitioned worker: `auto` takes a namespace when `ip netns` works (root, iproute2) and
 * says on stderr when it falls back to SIGSTOP; `netns` insists (throws when it cannot).
 */
export function soakNetwork(tag: string, asked: PartitionBy | "auto"): { network?: DemoNetwork; by: PartitionBy } {
  if (asked === "sigstop") return { by: "sigstop" };
  try {
    return { network: createDemoNetwork(tag, [SOAK_WORKER]), by: "netns" };
  } catch (error) {
    if (asked === "netns") throw error;
    console.error(`soak: ${(error as Error).message}; the worker partition is SIGSTOP instead`);
    return { by: "sigstop" };
  }
}

const SOAK_WORKER = "soak-worker";

/** One restart of the dispatcher. */
export interface SoakRestart {
  /** When it was killed, ms since the soak started. */
  readonly killedAtMs: number;
  /** From the kill to `/readyz` answering again (the log replayed, the port open). */
  readonly recoveryMs: number;
}

/** The soak's dispatcher: started on a data directory, killed -9 and started again on it. */
export class SoakDispatcher {
  private child: ChildProcess | undefined;
  /** 1 for the first process, +1 per restart. */
  incarnation = 0;
  /** Down from the kill until ready again (errors then are the fault's, not the dispatcher's). */
  down = false;
  readonly restarts: SoakRestart[] = [];

  constructor(
    private readonly args: readonly string[],
    private readonly url: string,
  ) {}

  /** The running process's pid. */
  get pid(): number {
    return this.child?.pid ?? 0;
  }

  /** Starts the process and waits until `/readyz` answers. */
  async start(): Promise<void> {
    const main = resolve(import.meta.dirname, "main.js");
    const child = spawn(process.execPath, [main, ...this.args], { stdio: ["ignore", "ignore", "inherit"] });
    this.child = child;
    this.incarnation++;
    for (let i = 0; ; i++) {
      try {
        if ((await fetch(`${this.url}/readyz`)).ok) return;
      } catch {
        // Not listening yet.
      }
      if (i > 600 || child.exitCode !== null) throw new Error("the dispatcher did not become ready");
      await sleep(50);
    }
  }

  /** kill -9, then a new process on the same data directory; records how long it took. */
  async kill9(soakStarted: number): Promise<SoakRestart> {
    const child = this.child as ChildProcess;
    const killedAt = performance.now();
    this.down = true;
    const exited = new Promise((res) => child.once("exit", res));
    child.kill("SIGKILL");
    await exited;
    await this.start();
    this.down = false;
    const restart = {
      killedAtMs: Math.round(killedAt - soakStarted),
      recoveryMs: Math.round(performance.now() - killedAt),
    };
    this.restarts.push(restart);
    return restart;
  }

  /** kill -9 without a restart (the end of the soak). */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((res) => child.once("exit", res));
    child.kill("SIGKILL");
    await exited;
  }
}

/**
 * A worker in a process of its own (`soak.js worker <url>`): it leases and completes, and says on stdout what it is
 * about to complete (`a <serial>`) and how that ended: `s` settled (or outcome unknown), `r` refused as late (the
 * item is back in the queue). An attempt still open when the worker is stopped counts as settled.
 */
export class SoakWorker {
  private readonly child: ChildProcess;
  private readonly open = new Set<number>();
  /** How many times it was partitioned (cut off, then let back). */
  partitions = 0;

  /** `network`: the worker runs in its namespace and a partition is its link going down. */
  constructor(
    url: string,
    private readonly ledger: SoakLedger,
    private readonly network?: DemoNetwork,
  ) {
    const argv = [process.execPath, resolve(import.meta.dirname, "soak.js"), "worker", url];
    const run = network ? network.exec(SOAK_WORKER, argv) : { command: argv[0] as string, args: argv.slice(1) };
    this.child = spawn(run.command, run.args, { stdio: ["ignore", "pipe", "inherit"] });
    createInterface({ input: this.child.stdout! }).on("line", (line) => {
      const serial = Number(line.slice(2));
      if (line.startsWith("a ")) this.open.add(serial);
      else this.open.delete(serial);
      if (line.startsWith("s ")) ledger.settled(serial);
    });
  }

  /** Cuts the worker off for `ms` (link down, or SIGSTOP), then lets it back: its leases run out meanwhile. */
  async partition(ms: number): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    if (this.network) this.network.setLink(SOAK_WORKER, false);
    else this.child.kill("SIGSTOP");
    await sleep(ms);
    if (this.network) this.network.setLink(SOAK_WORKER, true);
    else this.child.kill("SIGCONT");
    this.partitions++;
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((res) => child.once("exit", res));
    child.kill("SIGCONT");
    child.kill("SIGKILL");
    await exited;
    for (const serial of this.open) this.ledger.settled(serial);
  }
}

/** The worker process's loop (`soak.js worker <url>`): lease up to 8, complete each; never stops by itself. */
export async function workerMain(url: string): Promise<void> {
  const client = new ResourceLeaseClient({
    outbound: new HttpOutbound({ url, timeoutMs: 5_000 }),
    namespace: "resourcelease.mesh",
    caller: "soak-worker",
  });
  for (;;) {
    try {
      const grants = await client.lease({ maxItems: 8, peerId: "soak-partitioned-worker" });
      if (grants.length === 0) await sleep(20);
      for (const grant of grants) {
        const serial = serialOf(grant.payload.resourceId);
        process.stdout.write(`a ${serial}\n`);
        // Late after a partition: the lease ran out meanwhile and the item went back to the queue.
        const late = await client.complete(grant.ownershipToken).then(() => false, refusedAsLate);
        process.stdout.write(`${late && grant.attempt < LAST_ATTEMPT ? "r" : "s"} ${serial}\n`);
      }
      await sleep(5);
    } catch {
      await sleep(100); // the dispatcher is restarting
    }
  }
}
