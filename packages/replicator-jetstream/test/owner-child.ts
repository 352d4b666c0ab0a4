import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { expect } from "vitest";
import type { OwnedJetStreamResourceLeaseQueue } from "../src/index.js";

const script = fileURLToPath(new URL("./fixtures/owner-node.mjs", import.meta.url));

/** Where the owner child works: its NATS servers, stream, buckets and shard. */
export interface OwnerChildSetup {
  readonly servers: readonly string[];
  readonly stream: string;
  readonly subjectPrefix: string;
  readonly ownersBucket: string;
  readonly snapshotBucket: string;
  readonly shard: string;
  readonly ttlMs: number;
  readonly replicas?: number;
}

/** What the child printed: acknowledged enqueues, completed and held leases with their tokens. */
export interface Printed {
  ready: boolean;
  acked: Map<string, number>;
  done: Map<number, number>;
  held: Map<number, number>;
  /** Items whose completion was sent; at most the last one may have been completed without its "done" line. */
  completing: Set<number>;
  /** The code of the error that ended the child's run, if one did. */
  error?: string;
}

/** Starts test/fixtures/owner-node.mjs as node "child" and collects what it prints. */
export function startOwner(setup: OwnerChildSetup): {
  child: ChildProcess;
  printed: Printed;
  stderr: () => string;
} {
  const child = spawn(process.execPath, [script], {
    env: {
      ...process.env,
      NATS_URL: setup.servers.join(","),
      REPLICAS: String(setup.replicas ?? 1),
      OWNERS_BUCKET: setup.ownersBucket,
      SNAPSHOT_BUCKET: setup.snapshotBucket,
      STREAM: setup.stream,
      SUBJECT_PREFIX: setup.subjectPrefix,
      SHARD: setup.shard,
      NODE_ID: "child",
      TTL_MS: String(setup.ttlMs),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const printed: Printed = { ready: false, acked: new Map(), done: new Map(), held: new Map(), completing: new Set() };
  let buffer = "";
  let errors = "";
  child.stderr?.on("data", (chunk: Buffer) => {
    errors += chunk.toString();
  });
  child.stdout?.on("data", (chunk: Buffer) => {
    buffer += chunk.toString();
    const lines = buffer.split("\n");
    buffer = lines.pop() ?? "";
    for (const line of lines) {
      const [kind, a, b] = line.split(" ");
      if (kind === "ready") printed.ready = true;
      if (kind === "ack") printed.acked.set(a!, Number(b));
      if (kind === "done") printed.done.set(Number(a), Number(b));
      if (kind === "held") printed.held.set(Number(a), Number(b));
      if (kind === "completing") printed.completing.add(Number(a));
      if (kind === "error") printed.error = a;
    }
  });
  return { child, printed, stderr: () => errors };
}

/**
 * Checks the new owner's queue against what the killed child printed: no acknowledged enqueue lost (each is pending,
 * held or was completed; only the item whose completion was in flight may be gone without a "done" line), no
 * completed item back, held leases still held with the same tokens. Returns the highest token the child issued.
 */
export function expectNothingLost(printed: Printed, owned: OwnedJetStreamResourceLeaseQueue): number {
  const state = owned.queue.snapshot();
  const pending = new Set(state.pending.map((p) => p.sequenceId));
  const active = new Map(state.active.map((l) => [l.item.sequenceId, l.token.fencingToken]));
  // No acknowledged enqueue lost: each is pending, held, or was completed. Only the item whose completion was in
  // flight at the kill may be gone without a "done" line (its completion committed, the line not printed yet).
  const inFlight = [...printed.completing].filter((id) => !printed.done.has(id));
  expect(inFlight.length).toBeLessThanOrEqual(1);
  for (const [resourceId, sequenceId] of printed.acked) {
    const there = pending.has(sequenceId) || active.has(sequenceId) || printed.done.has(sequenceId);
    expect(there || inFlight.includes(sequenceId), `${resourceId} (${sequenceId})`).toBe(true);
  }
  // No completed item comes back; held leases are still held with the same tokens.
  for (const sequenceId of printed.done.keys()) {
    expect(pending.has(sequenceId) || active.has(sequenceId)).toBe(false);
  }
  for (const [sequenceId, token] of printed.held) expect(active.get(sequenceId)).toBe(token);

  return Math.max(0, ...printed.done.values(), ...printed.held.values());
}
