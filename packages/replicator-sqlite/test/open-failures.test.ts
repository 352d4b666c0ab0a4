import { spawn } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { SCHEMA_VERSION_TABLE, SqliteResourceLeaseReplicator } from "../src/index.js";
import { built } from "./drill-helpers.js";
import { rejection, tempDb, tempDir } from "./helpers.js";

// Environment failures at open come back coded (never a raw SQLite or file-system error), with a message naming the
// cause. These run as root too (no chmod): root may write anything, so read-only files and directories are left to
// the probe scripts; a missing directory, a directory in the file's place, a file-size limit and a damaged schema
// fail for root as for anyone.

const WRITE_FAILED = { status: "unavailable", code: "resourcelease.sqlite.write_failed" };

function ev(sequenceNumber: number) {
  return { sequenceNumber, eventType: "Heartbeat" as const, timestamp: 1_700_000_000_000, metadata: {} };
}

async function logWithEvents(path: string): Promise<void> {
  const log = await SqliteResourceLeaseReplicator.open({ path, writerThread: false });
  await log.publish([ev(1), ev(2), ev(3)]);
  await log.close();
}

/** Runs `body` (ES module text, the built package imported as `lib`) under `bash -c "<limits>; exec node"`. */
function runLimited(limits: string, body: string): Promise<string> {
  const file = join(tempDir(), "child.mjs");
  writeFileSync(file, `import * as lib from ${JSON.stringify(built)};\n${body}\n`);
  const child = spawn("bash", ["-c", `${limits}; exec "${process.execPath}" "${file}"`], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (c: Buffer) => {
    out += c.toString();
  });
  child.stderr.on("data", (c: Buffer) => {
    out += c.toString();
  });
  return new Promise((resolve) => child.once("exit", () => resolve(out)));
}

describe.each([false, true])("opening a log in a broken environment (writerThread %s)", (writerThread) => {
  it("whose directory does not exist fails with write_failed, reason directory_missing, naming the directory", async () => {
    const dir = join(tempDir(), "missing");
    const path = join(dir, "log.db");
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path, writerThread }));
    expect(err).toMatchObject(WRITE_FAILED);
    expect(err.metadata).toMatchObject({ reason: "directory_missing", path });
    expect(err.message).toContain(`directory '${dir}' does not exist`);
    expect(existsSync(dir)).toBe(false);
  });

  it("whose path is a directory fails with write_failed, reason not_a_file", async () => {
    const path = tempDb();
    mkdirSync(path);
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path, writerThread }));
    expect(err).toMatchObject(WRITE_FAILED);
    expect(err.metadata).toMatchObject({ reason: "not_a_file", path });
    expect(err.message).toContain("is a directory");
  });

  it("whose high-water record cannot be read fails with write_failed, reason high_water_unreadable", async () => {
    const path = tempDb();
    await logWithEvents(path);
    // A directory in the record's place: reading it fails with EISDIR (as EACCES would for a record not readable).
    rmSync(`${path}.hwm`);
    mkdirSync(`${path}.hwm`);
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path, writerThread }));
    expect(err).toMatchObject(WRITE_FAILED);
    expect(err.metadata).toMatchObject({ reason: "high_water_unreadable", path: `${path}.hwm`, errno: "EISDIR" });
  });

  it.each([
    ["its events table was dropped", "DROP TABLE resourcelease_events"],
    ["its schema version rows were deleted", `DELETE FROM ${SCHEMA_VERSION_TABLE}`],
  ])("whose schema does not match (%s) fails as corrupt, reason sqlite", async (_, sql) => {
    const path = tempDb();
    await logWithEvents(path);
    const db = new Database(path);
    db.exec(sql);
    db.close();
    const err = await rejection(SqliteResourceLeaseReplicator.open({ path, writerThread }));
    expect(err).toMatchObject({ status: "data-loss", code: "resourcelease.sqlite.corrupt" });
    expect(err.metadata).toMatchObject({ reason: "sqlite", sqliteCode: "SQLITE_ERROR", path });
  });
});

describe("opening a new log under a file-size limit (ulimit -f), in a child process", () => {
  it("fails with write_failed, reason write_error, naming the limit", async () => {
    expect(existsSync(built), "build the package first (pnpm build): the child runs dist/index.js").toBe(true);
    const path = tempDb();
    const out = await runLimited(
      "ulimit -f 40",
      `try {
        await lib.SqliteResourceLeaseReplicator.open({ path: ${JSON.stringify(path)} });
        console.log(JSON.stringify({ opened: true }));
      } catch (e) {
        console.log(JSON.stringify({ code: e.code, status: e.status, metadata: e.metadata, message: e.message }));
      }`,
    );
    const result = JSON.parse(out.trim().split("\n").at(-1)!);
    expect(result).toMatchObject({ ...WRITE_FAILED, metadata: { reason: "write_error", path } });
    expect(result.metadata.sqliteCode).toMatch(/^SQLITE_(IOERR_WRITE|FULL)/);
    expect(result.message).toContain("ulimit -f");
  });
});
