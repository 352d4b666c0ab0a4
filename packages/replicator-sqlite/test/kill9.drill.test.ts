import { existsSync } from "node:fs";
import { type ResourceLeaseClient, type ResourceLeaseOwnershipToken, ResourceLeaseQueue } from "@omnirelay/core";
import { describe, expect, it } from "vitest";
import { built, codeOf, prng, startWith } from "./drill-helpers.js";
import { eventsAt, item, tempDb } from "./helpers.js";

// 12 kills per mode in CI (48 in all, each at a random moment); KILL9_ROUNDS=N runs a longer drill.
const ROUNDS = Number(process.env.KILL9_ROUNDS ?? 12);
const WORKERS = 4;

// 'process-safe' skips the fsync per commit: a killed process must lose nothing either, the OS still has the writes.
// Every mode that promises it runs with the log's writer thread (the default), where an answer waits for the thread's
// commit report; 'batched' also with the log on the event loop's thread.
describe.each([
  { durability: "batched", writerThread: true },
  { durability: "process-safe", writerThread: true },
  { durability: "sync", writerThread: true },
  { durability: "batched", writerThread: false },
])(
  "kill -9 drill (durability '$durability', writerThread $writerThread): a dispatcher on a SQLite log loses no acknowledged work",
  (options) => {
    const start = (path: string) => startWith(options, path);
    it(`survives ${ROUNDS} SIGKILLs at random moments under enqueue/lease/complete load`, async () => {
      expect(existsSync(built), "build the package first (pnpm build): the fixture runs dist/index.js").toBe(true);
      const seed = Date.now() % 1_000_000;
      const rand = prng(seed);
      const path = tempDb("drill.db");
      const acked = new Map<string, number>(); // requestId -> sequenceId of an acknowledged enqueue
      const unknown = new Set<string>(); // requestIds whose enqueue got no answer (killed mid-call)
      const completed = new Map<number, number>(); // sequenceId -> fencing token of an acknowledged complete
      let stale: ResourceLeaseOwnershipToken[] = [];
      let fencedChecks = 0;
      let counter = 0;

      const resume = async (client: ResourceLeaseClient) => {
        // Every token handed out before the restart is fenced now, whatever happened to it.
        for (const token of stale) {
          const error = await client.complete(token).then(
            () => undefined,
            (e: unknown) => e,
          );
          expect(codeOf(error), `stale token ${JSON.stringify(token)} (seed ${seed})`).toBe(
            "resourcelease.lease.fenced",
          );
          fencedChecks++;
        }
        stale = [];
        // A retried enqueue with the same requestId is deduplicated when the first one was committed.
        for (const requestId of [...unknown]) {
          const r = await client.enqueue(item(requestId, { requestId }));
          acked.set(requestId, r.sequenceId);
          unknown.delete(requestId);
        }
      };

      for (let round = 0; round < ROUNDS; round++) {
        const { child, client, exited } = await start(path);
        await resume(client);
        let alive = true;
        const held: ResourceLeaseOwnershipToken[] = [];
        const worker = async (w: number) => {
          while (alive) {
            const r = rand();
            if (r < 0.5) {
              const requestId = `r${round}-w${w}-${counter++}`;
              try {
                const res = await client.enqueue(item(requestId, { requestId, body: new Uint8Array([w, round]) }));
                acked.set(requestId, res.sequenceId);
              } catch (error) {
                if (alive) throw error;
                unknown.add(requestId);
              }
            } else if (r < 0.75) {
              try {
                const grants = await client.lease({ maxItems: 2, peerId: `w${w}` });
                for (const g of grants) {
                  held.push(g.ownershipToken);
                  stale.push(g.ownershipToken);
                }
              } catch (error) {
                if (alive) throw error;
              }
            } else {
              const token = held.shift();
              if (!token) continue;
              try {
                await client.complete(token);
                completed.set(token.sequenceId, token.fencingToken);
              } catch (error) {
                if (alive) throw error;
              }
            }
          }
        };
        const workers = Array.from({ length: WORKERS }, (_, w) => worker(w));
        // The kill moment is the random variable of the drill, so it is a timer by design.
        await new Promise((resolve) => setTimeout(resolve, 40 + Math.floor(rand() * 260)));
        alive = false;
        child.kill("SIGKILL");
        await exited;
        await Promise.all(workers);
        await client.close();
      }

      // One more restart: stale tokens of the last round are fenced, unanswered enqueues are retried.
      const last = await start(path);
      await resume(last.client);
      await last.client.close();
      last.child.kill("SIGKILL");
      await last.exited;

      const events = await eventsAt(path, { writerThread: options.writerThread });

      // Sequence numbers are gap-free 1..N.
      expect(events.map((e) => e.sequenceNumber)).toEqual(events.map((_, i) => i + 1));

      // Each requestId was enqueued exactly once, under the id its acknowledgement named.
      const enqueued = new Map<string, number[]>();
      for (const e of events) {
        const rid = e.eventType === "Enqueue" ? e.item?.payload.requestId : undefined;
        if (rid !== undefined) enqueued.set(rid, [...(enqueued.get(rid) ?? []), e.item!.sequenceId]);
      }
      for (const [rid, sequenceId] of acked) expect(enqueued.get(rid), rid).toEqual([sequenceId]);

      // Every acknowledged enqueue is still there (pending, active or dead) or was completed.
      const state = (await ResourceLeaseQueue.rebuild(events, {}, { activeLeases: "keep" })).snapshot();
      const present = new Set([
        ...state.pending.map((p) => p.sequenceId),
        ...state.delayed.map((p) => p.sequenceId),
        ...state.active.map((a) => a.item.sequenceId),
        ...state.deadLetters.map((d) => d.sequenceId),
      ]);
      const completedAt = new Map<number, number>();
      for (const e of events)
        if (e.eventType === "Completed") completedAt.set(e.ownership!.sequenceId, e.sequenceNumber);
      for (const [rid, sequenceId] of acked) {
        expect(
          present.has(sequenceId) || completedAt.has(sequenceId),
          `${rid} (#${sequenceId}) lost, seed ${seed}`,
        ).toBe(true);
      }

      // No acknowledged completion is undone: committed, never granted again, not in the state.
      for (const [sequenceId, fencingToken] of completed) {
        const at = completedAt.get(sequenceId);
        expect(at, `completion of #${sequenceId} not in the log (seed ${seed})`).toBeDefined();
        expect(events[at! - 1]?.ownership?.fencingToken).toBe(fencingToken);
        const later = events
          .slice(at!)
          .filter((e) => e.ownership?.sequenceId === sequenceId || e.item?.sequenceId === sequenceId)
          // A retried completion of a done item is refused and audited (LeaseRefused): that changes nothing.
          .filter((e) => e.eventType !== "LeaseRefused");
        expect(later, `#${sequenceId} reappeared after completion (seed ${seed})`).toEqual([]);
        expect(present.has(sequenceId)).toBe(false);
      }

      // The drill exercised what it claims to.
      expect(acked.size).toBeGreaterThan(ROUNDS * 5);
      expect(completed.size).toBeGreaterThan(ROUNDS);
      expect(fencedChecks).toBeGreaterThan(ROUNDS);
      expect(events.some((e) => e.eventType === "LeaseExpired")).toBe(true);
    }, 90_000);
  },
);
