import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { MessageChannel, type MessagePort, receiveMessageOnPort, Worker } from "node:worker_threads";
import type { ResourceLeaseQueueSnapshot } from "@omnirelay/core";
import type { ResourceLeaseSnapshotInPieces } from "@omnirelay/core/replication";
import type { CommitDone } from "./group-commit.js";
import { decodeSnapshotInPages, decodeSnapshotRow, type ReadEventRow, type SnapshotPartRow } from "./integrity.js";
import type { Row } from "./log-rows.js";
import { type RawSnapshot, SNAPSHOT_PARTS_PER_PAGE, type SnapshotHeadRow, type SnapshotRows } from "./log-snapshots.js";
import type { LogStart, LogStore } from "./log-store.js";
import type { ResolvedReplicatorOptions } from "./options.js";
import {
  type AsyncCall,
  type AsyncDone,
  asBuffer,
  fromWire,
  type OpenReport,
  type PackedRows,
  packWrite,
  type SyncAnswer,
  type SyncCall,
  unpackRows,
  type WriteDone,
  type WriterThreadData,
} from "./thread-protocol.js";

/** How long a synchronous call waits for the thread (it answers between two commits). */
const SYNC_TIMEOUT_MS = 120_000;

/**
 * The writer thread's entry: beside this module once built (dist/), or the built one when this runs from src/ (the
 * package's own tests run the sources).
 */
function threadEntry(): URL {
  const beside = new URL("./writer-thread.js", import.meta.url);
  if (existsSync(fileURLToPath(beside))) return beside;
  return new URL("../dist/writer-thread.js", import.meta.url);
}

/**
 * A {@link LogStore} whose connection lives on a `worker_threads` thread. Writes are handed over as one message per
 * group commit (the rows' bytes in one transferred buffer) and answered when committed; reads and snapshot writes,
 * which are rare, wait synchronously for the thread's answer (between two of its commits). The thread keeps the
 * process alive only while something waits on it. Internal.
 */
export class ThreadLogStore implements LogStore {
  readonly snapshots: SnapshotRows;
  private readonly writes: CommitDone[] = [];
  private readonly calls = new Map<number, { resolve: () => void; reject: (error: unknown) => void }>();
  /** The page asked for ahead of time (see `selectPage`), whose answer is still to be received. */
  private readAhead: PagedCall | undefined;
  private nextId = 1;
  private dead: Error | undefined;
  /** Set once close is sent: the thread stays referenced until it has exited. */
  private closing = false;
  private readonly exited: Promise<void>;

  private constructor(
    private readonly worker: Worker,
    private readonly flag: Int32Array,
    private readonly answers: MessagePort,
  ) {
    this.snapshots = {
      clear: (sequence) => void this.call({ kind: "snap-clear", sequence }),
      putParts: (sequence, first, parts) => this.post({ kind: "snap-parts-async", sequence, first, parts: [...parts] }),
      finish: (h) =>
        void this.call({
          kind: "snap-finish",
          sequence: h.sequence,
          createdAt: h.createdAt,
          head: h.head,
          ...(h.parts ? { parts: [...h.parts] } : {}),
        }),
    };
    this.exited = new Promise<void>((resolve) => worker.once("exit", () => resolve()));
    worker.on("message", (m: WriteDone | AsyncDone) => this.onMessage(m));
    worker.on("error", (error) => this.die(error));
    worker.once("exit", (code) => this.die(new Error(`The SQLite writer thread exited (code ${code}).`)));
  }

  /**
   * Starts the thread, which opens and verifies the log (see `openVerifiedLog`).
   * @throws the error that refused the log (the same coded errors as opening it on this thread).
   */
  static async open(settings: ResolvedReplicatorOptions): Promise<{ store: ThreadLogStore; start: LogStart }> {
    const flag = new SharedArrayBuffer(4);
    const { port1, port2 } = new MessageChannel();
    const data: WriterThreadData = { settings, flag, syncPort: port2 };
    const worker = new Worker(threadEntry(), { workerData: data, transferList: [port2] });
    // Listened for from the start: a thread that fails to open posts its report and exits at once, and its exit can
    // be emitted before a listener added after the report would be (the open then waited forever).
    const exited = new Promise<number>((resolve) => worker.once("exit", resolve));
    const report = await new Promise<OpenReport>((resolve, reject) => {
      const failed = (error: unknown) => reject(error);
      worker.once("error", failed);
      void exited.then((code) => reject(new Error(`The SQLite writer thread exited (code ${code}) while opening.`)));
      worker.once("message", (m: OpenReport) => {
        worker.off("error", failed);
        resolve(m);
      });
    });
    if (report.kind === "open-failed") {
      await exited;
      port1.close();
      throw fromWire(report.error);
    }
    const store = new ThreadLogStore(worker, new Int32Array(flag), port1);
    worker.unref();
    port1.unref();
    const { last, snapshot, counters, recorded } = report;
    return { store, start: { last, snapshot, counters, recorded } };
  }

  commit(txs: readonly (readonly Row[])[], done: CommitDone): void {
    if (this.dead) {
      done(0, this.dead);
      return;
    }
    const { message, transfer } = packWrite(txs);
    this.writes.push(done);
    this.worker.ref();
    this.worker.postMessage(message, transfer);
  }

  /**
   * A page of rows. A full page asks for the next one before it returns (read ahead): the thread reads it from SQLite
   * while this thread decodes and applies the page it has (a restart reads its log page after page this way).
   */
  selectPage(from: number, limit: number): readonly ReadEventRow[] {
    const rows = unpackRows(this.ahead({ kind: "select", from, limit }) as PackedRows);
    const last = rows[rows.length - 1];
    if (last && rows.length === limit) this.askAhead({ kind: "select", from: last[0] + 1, limit });
    return rows;
  }

  /**
   * The answer of a paged read (`select`, `snapshot-parts`): the one asked for ahead of time when it is this one, or
   * a fresh call. A full page of snapshot parts asks for the next one before it returns, as `selectPage` does.
   */
  private ahead(page: PagedCall): unknown {
    const a = this.readAhead;
    let value: unknown;
    if (
      a &&
      a.kind === page.kind &&
      a.from === page.from &&
      a.limit === page.limit &&
      sequenceOf(a) === sequenceOf(page)
    ) {
      this.readAhead = undefined;
      value = this.receive();
    } else {
      value = this.call(page);
    }
    if (page.kind === "snapshot-parts" && (value as unknown[]).length === page.limit) {
      this.askAhead({ ...page, from: page.from + page.limit });
    }
    return value;
  }

  /** Asks for `page` now, its answer received by the next {@link ahead} that wants it (or dropped by any other call). */
  private askAhead(page: PagedCall): void {
    if (this.dead) return;
    this.send(page);
    this.readAhead = page;
  }

  latestSnapshot(): ResourceLeaseQueueSnapshot | undefined {
    const raw = this.latestSnapshotRows();
    return raw ? decodeSnapshotRow(raw.row, raw.parts) : undefined;
  }

  latestSnapshotInPieces(): ResourceLeaseSnapshotInPieces | undefined {
    const head = this.call({ kind: "snapshot-head" }) as SnapshotHeadRow | undefined;
    if (!head) return undefined;
    const sequence = head.row.sequence;
    return decodeSnapshotInPages(head.row, head.parts, (from) => {
      const rows = this.ahead({
        kind: "snapshot-parts",
        sequence,
        from,
        limit: SNAPSHOT_PARTS_PER_PAGE,
      }) as SnapshotPartRow[];
      return rows.map((p) => ({ ...p, data: asBuffer(p.data) }));
    });
  }

  private latestSnapshotRows(): RawSnapshot | undefined {
    const raw = this.call({ kind: "latest-snapshot" }) as RawSnapshot | undefined;
    return raw ? { row: raw.row, parts: raw.parts.map((p) => ({ ...p, data: asBuffer(p.data) })) } : undefined;
  }

  backup(toPath: string): Promise<void> {
    return this.post({ kind: "backup", to: toPath });
  }

  /** Sends an asynchronous call, settled by the thread's `done` for it. */
  private post(call: DistributiveOmit<Exclude<AsyncCall, { kind: "close" }>, "id">): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    const id = this.nextId++;
    this.worker.ref();
    return new Promise<void>((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      this.worker.postMessage({ ...call, id });
    });
  }

  async close(): Promise<void> {
    this.closing = true;
    if (!this.dead) {
      this.worker.ref();
      this.worker.postMessage({ kind: "close" });
    }
    await this.exited;
    this.answers.close();
  }

  /** Sends `call` and waits (blocking this thread) for its answer. @throws the thread's error. */
  private call(call: SyncCall): unknown {
    if (this.dead) throw this.dead;
    this.dropReadAhead();
    this.send(call);
    return this.receive();
  }

  /** One synchronous call at a time: a page read ahead that nobody asked for is received and dropped first. */
  private dropReadAhead(): void {
    if (!this.readAhead) return;
    this.readAhead = undefined;
    try {
      this.receive();
    } catch {
      // Its error is the next call's to report, if it recurs.
    }
  }

  private send(call: SyncCall): void {
    Atomics.store(this.flag, 0, 0);
    this.worker.postMessage({ kind: "sync", call });
  }

  /** Waits (blocking this thread) for the answer of the call sent last. @throws the thread's error. */
  private receive(): unknown {
    if (Atomics.wait(this.flag, 0, 0, SYNC_TIMEOUT_MS) === "timed-out") {
      throw new Error(`The SQLite writer thread did not answer within ${SYNC_TIMEOUT_MS} ms.`);
    }
    const answer = receiveMessageOnPort(this.answers)?.message as SyncAnswer | undefined;
    if (!answer) throw new Error("The SQLite writer thread answered nothing.");
    if (!answer.ok) throw fromWire(answer.error);
    return answer.value;
  }

  private onMessage(m: WriteDone | AsyncDone): void {
    if (m.kind === "written") {
      const done = this.writes.shift();
      done?.(m.committed, m.error ? fromWire(m.error) : undefined, m.joined);
    } else if (m.id !== 0) {
      const call = this.calls.get(m.id);
      this.calls.delete(m.id);
      if (m.error) call?.reject(fromWire(m.error));
      else call?.resolve();
    }
    if (this.writes.length === 0 && this.calls.size === 0 && !this.closing) this.worker.unref();
  }

  private die(error: Error): void {
    this.dead ??= error;
    for (const done of this.writes.splice(0)) done(0, this.dead);
    for (const call of this.calls.values()) call.reject(this.dead);
    this.calls.clear();
  }
}

/** A read answered a page at a time, which may be asked for ahead. */
type PagedCall = Extract<SyncCall, { kind: "select" | "snapshot-parts" }>;

function sequenceOf(page: PagedCall): number | undefined {
  return page.kind === "snapshot-parts" ? page.sequence : undefined;
}

/** `Omit` over each member of a union. */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
