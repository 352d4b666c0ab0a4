/**
 * The SQLite log's writer thread (a `worker_threads` entry; see thread-log.ts). It owns the log's only connection:
 * it opens and verifies the log, then inserts the rows it is handed (checksums, inserts, the commit and its fsync)
 * and answers the reads and snapshot writes of the event loop's thread. Internal.
 */
import { type MessagePort, parentPort, workerData } from "node:worker_threads";
import type Database from "better-sqlite3";
import { prepareInsertRows, prepareSelectRows, type Row } from "./log-rows.js";
import { prepareSnapshotRows, readLatestSnapshotRows } from "./log-snapshots.js";
import { openVerifiedLog } from "./open-log.js";
import { logTables } from "./schema.js";
import {
  type AsyncCall,
  asBuffer,
  type OpenReport,
  type PackedWrite,
  type SyncAnswer,
  type SyncCall,
  toWire,
  type WireError,
  type WriteDone,
  type WriterThreadData,
} from "./thread-protocol.js";

const port = parentPort;
if (!port) throw new Error("writer-thread.js runs as a worker thread.");
const { settings, flag, syncPort } = workerData as WriterThreadData;
const signal = new Int32Array(flag);

function openLog(): Database.Database | undefined {
  try {
    const v = openVerifiedLog(settings);
    const report: OpenReport = {
      kind: "opened",
      last: v.last,
      snapshot: v.snapshot,
      counters: v.counters,
      recorded: v.recorded,
    };
    port?.postMessage(report);
    return v.db;
  } catch (error) {
    const report: OpenReport = { kind: "open-failed", error: toWire(error) };
    port?.postMessage(report);
    return undefined;
  }
}

function serve(db: Database.Database, out: MessagePort): void {
  const tables = logTables(settings.table);
  const insertAll = prepareInsertRows(db, tables);
  const select = prepareSelectRows(db, tables);
  const snapshots = prepareSnapshotRows(db, tables, settings);
  let fault: WireError | undefined;

  const write = (m: PackedWrite): WriteDone => {
    if (fault) return { kind: "written", committed: 0, error: fault };
    const data = Buffer.from(m.data);
    const meta = new Float64Array(m.meta);
    let at = 0;
    let r = 0;
    let committed = 0;
    for (const n of m.txs) {
      const rows: Row[] = [];
      for (let i = 0; i < n; i++, r += 4) {
        const length = meta[r + 3] as number;
        rows.push({
          sequence: meta[r] as number,
          type: meta[r + 1] as number,
          timestamp: meta[r + 2] as number,
          data: data.subarray(at, at + length),
        });
        at += length;
      }
      try {
        insertAll(rows);
      } catch (error) {
        fault = toWire(error);
        return { kind: "written", committed, error: fault };
      }
      committed++;
    }
    return { kind: "written", committed };
  };

  const call = (c: SyncCall): unknown => {
    switch (c.kind) {
      case "select":
        return select.all(c.from, c.limit);
      case "latest-snapshot":
        return readLatestSnapshotRows(db, tables);
      case "snap-clear":
        return snapshots.clear(c.sequence);
      case "snap-parts":
        return snapshots.putParts(c.sequence, c.first, c.parts.map(asBuffer));
      case "snap-finish":
        return snapshots.finish({ ...c, ...(c.parts ? { parts: c.parts.map(asBuffer) } : {}) });
    }
  };

  const answer = (c: SyncCall): void => {
    let reply: SyncAnswer;
    try {
      reply = { ok: true, value: call(c) };
    } catch (error) {
      reply = { ok: false, error: toWire(error) };
    }
    out.postMessage(reply);
    Atomics.store(signal, 0, 1);
    Atomics.notify(signal, 0);
  };

  const close = (): void => {
    let error: WireError | undefined;
    try {
      db.close(); // checkpoints the WAL into the file
    } catch (e) {
      error = toWire(e);
    }
    port?.postMessage({ kind: "done", id: 0, ...(error ? { error } : {}) });
    // Nothing left to listen to: the thread ends once the answer is sent.
    port?.removeAllListeners("message");
    port?.unref();
    out.close();
  };

  port?.on("message", (m: PackedWrite | { kind: "sync"; call: SyncCall } | AsyncCall) => {
    if (m.kind === "write") {
      port.postMessage(write(m));
    } else if (m.kind === "sync") {
      answer(m.call);
    } else if (m.kind === "backup") {
      db.backup(m.to).then(
        () => port.postMessage({ kind: "done", id: m.id }),
        (error: unknown) => port.postMessage({ kind: "done", id: m.id, error: toWire(error) }),
      );
    } else {
      close();
    }
  });
}

const db = openLog();
if (db) serve(db, syncPort);
else syncPort.close();
