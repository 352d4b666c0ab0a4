/**
 * The SQLite log's writer thread (a `worker_threads` entry; see thread-log.ts). It owns the log's only connection:
 * it opens and verifies the log, then inserts the rows it is handed (checksums, inserts, the commit and its fsync)
 * and answers the reads and snapshot writes of the event loop's thread. Internal.
 */
import { type MessagePort, parentPort, receiveMessageOnPort, workerData } from "node:worker_threads";
import type Database from "better-sqlite3";
import { prepareInsertRows, prepareSelectRows, type Row } from "./log-rows.js";
import {
  prepareSnapshotRows,
  readLatestSnapshotHead,
  readLatestSnapshotRows,
  readSnapshotPartsPage,
} from "./log-snapshots.js";
import { openVerifiedLog } from "./open-log.js";
import { logTables } from "./schema.js";
import {
  type AsyncCall,
  asBuffer,
  type OpenReport,
  ownedBuffers,
  type PackedWrite,
  packRows,
  type SyncAnswer,
  type SyncCall,
  toWire,
  unpackWrite,
  type WireError,
  type WriteDone,
  type WriterThreadData,
} from "./thread-protocol.js";
import { watchUnlink } from "./unlink-watch.js";

const port = parentPort;
if (!port) throw new Error("writer-thread.js runs as a worker thread.");
const { settings, flag, syncPort } = workerData as WriterThreadData;
const signal = new Int32Array(flag);

type Message = PackedWrite | { kind: "sync"; call: SyncCall } | AsyncCall;

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
  const unlinked = watchUnlink(settings.path);
  let fault: WireError | undefined;

  const commitRows = (rows: readonly Row[]): WireError | undefined => {
    if (fault) return fault;
    try {
      insertAll(rows);
    } catch (error) {
      fault = toWire(error);
      return fault;
    }
    const lost = unlinked.lost();
    if (lost) fault = toWire(lost);
    return fault;
  };

  const write = (m: PackedWrite): WriteDone => {
    let committed = 0;
    for (const rows of unpackWrite(m)) {
      const error = commitRows(rows);
      if (error) return { kind: "written", committed, error };
      committed++;
    }
    return { kind: "written", committed };
  };

  /** Writes of one transaction each that were waiting together: committed as one transaction, answered each. */
  const writeTogether = (group: readonly PackedWrite[]): void => {
    const error = commitRows(group.flatMap((m) => unpackWrite(m)[0] ?? []));
    for (let i = 0; i < group.length; i++) {
      const done: WriteDone = error
        ? { kind: "written", committed: 0, error }
        : { kind: "written", committed: 1, ...(i > 0 ? { joined: true } : {}) };
      port?.postMessage(done);
    }
  };

  const call = (c: SyncCall): unknown => {
    switch (c.kind) {
      case "select": // answered packed (see `answer`)
        return undefined;
      case "latest-snapshot":
        return readLatestSnapshotRows(db, tables);
      case "snapshot-head":
        return readLatestSnapshotHead(db, tables);
      case "snapshot-parts": // answered with its BLOBs transferred (see `answer`)
        return undefined;
      case "snap-clear":
        return snapshots.clear(c.sequence);
      case "snap-finish":
        return snapshots.finish({ ...c, ...(c.parts ? { parts: c.parts.map(asBuffer) } : {}) });
    }
  };

  const answer = (c: SyncCall): void => {
    let reply: SyncAnswer;
    let transfer: ArrayBuffer[] = [];
    try {
      if (c.kind === "select") {
        // A page of rows crosses as one transferred buffer (a restart reads a million rows this way).
        const { packed, transfer: buffers } = packRows(select.all(c.from, c.limit));
        reply = { ok: true, value: packed };
        transfer = buffers;
      } else if (c.kind === "snapshot-parts") {
        // A page of parts (megabytes) crosses with its BLOBs transferred, not copied.
        const parts = readSnapshotPartsPage(db, tables, c);
        reply = { ok: true, value: parts };
        transfer = ownedBuffers(parts.map((p) => p.data));
      } else {
        reply = { ok: true, value: call(c) };
      }
    } catch (error) {
      reply = { ok: false, error: toWire(error) };
    }
    out.postMessage(reply, transfer);
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
    unlinked.close(); // after the connection: closing a descriptor of the file drops this process's locks on it
    port?.postMessage({ kind: "done", id: 0, ...(error ? { error } : {}) });
    // Nothing left to listen to: the thread ends once the answer is sent.
    port?.removeAllListeners("message");
    port?.unref();
    out.close();
  };

  const joinable = (m: Message): m is PackedWrite =>
    m.kind === "write" && m.txs.length === 1 && settings.durability !== "sync";

  /** Handles `m`; returns a message taken from the queue that is still to be handled. */
  const handle = (m: Message): Message | undefined => {
    if (m.kind === "sync") {
      answer(m.call);
    } else if (m.kind === "backup") {
      db.backup(m.to).then(
        () => port?.postMessage({ kind: "done", id: m.id }),
        (error: unknown) => port?.postMessage({ kind: "done", id: m.id, error: toWire(error) }),
      );
    } else if (m.kind === "snap-parts-async") {
      let error: WireError | undefined;
      try {
        snapshots.putParts(m.sequence, m.first, m.parts.map(asBuffer));
      } catch (e) {
        error = toWire(e);
      }
      port?.postMessage({ kind: "done", id: m.id, ...(error ? { error } : {}) });
    } else if (m.kind === "close") {
      close();
    } else if (!joinable(m)) {
      port?.postMessage(write(m));
    } else {
      // Group commit across messages: the writes that queued up during the last commit go in one transaction.
      const group = [m];
      let rows = m.meta.byteLength / 32;
      while (rows < settings.maxBatchEvents) {
        const next = port ? (receiveMessageOnPort(port)?.message as Message | undefined) : undefined;
        if (!next) break;
        if (!joinable(next)) {
          writeTogether(group);
          return next;
        }
        group.push(next);
        rows += next.meta.byteLength / 32;
      }
      writeTogether(group);
    }
    return undefined;
  };

  port?.on("message", (m: Message) => {
    let next: Message | undefined = m;
    while (next) next = handle(next);
  });
}

const db = openLog();
if (db) serve(db, syncPort);
else syncPort.close();
