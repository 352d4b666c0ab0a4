import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { ErrorCodes, OmniRelayError } from "@omnirelay/core";
import {
  checkDeterministicRecord,
  checkStateStoreKey,
  type DeterministicRecord,
  type DeterministicStateStore,
} from "@omnirelay/core/deterministic";
import { storeError } from "../errors.js";
import { writeFileDurably } from "./durable-file.js";

/** Options of {@link FileSystemDeterministicStateStore}. */
export interface FileSystemDeterministicStateStoreOptions {
  /** Folder holding the records (created on the first write). */
  readonly rootDirectory: string;
  /** fsync each file and its folder before a write resolves. Turn off only for tests. @defaultValue true */
  readonly fsync?: boolean;
}

interface RecordJson {
  kind: string;
  version: number;
  recordedAt: string;
  payload: string;
}

/**
 * A {@link DeterministicStateStore} on the filesystem, file-compatible with the original's layout
 * (`{root}/{H[0..2]}/{H}.json`, `H` the uppercase hex SHA-256 of the key; `{kind, version, recordedAt, payload}`
 * with an ISO time and base64 payload). Unlike the original, every write is crash-safe (temp file, fsync, rename,
 * fsync of the folder), and `tryAdd` is atomic across processes (it hard-links the temp file into place, which fails
 * when the record exists).
 */
export class FileSystemDeterministicStateStore implements DeterministicStateStore {
  /** The absolute root folder. */
  readonly rootDirectory: string;
  private readonly fsync: boolean;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`). */
  constructor(options: FileSystemDeterministicStateStoreOptions) {
    if (typeof options?.rootDirectory !== "string" || options.rootDirectory.trim().length === 0) {
      throw OmniRelayError.invalidOption("rootDirectory", "rootDirectory is required.");
    }
    this.rootDirectory = resolve(options.rootDirectory);
    this.fsync = options.fsync ?? true;
  }

  /**
   * Reads a record, `undefined` when absent.
   * @throws OmniRelayError data-loss `resourcelease.objectstorage.corrupt` (metadata `key`, `reason: 'record'`) for
   *   an unreadable file; invalid-argument `resourcelease.deterministic.key_required` for a blank key.
   */
  async get(key: string): Promise<DeterministicRecord | undefined> {
    const path = this.pathOf(key);
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw storeError("get", key, error);
    }
    try {
      const json = JSON.parse(text) as RecordJson;
      const recordedAt = typeof json.recordedAt === "number" ? json.recordedAt : Date.parse(json.recordedAt);
      if (typeof json.kind !== "string" || !Number.isInteger(json.version) || typeof json.payload !== "string") {
        throw new Error("missing kind, version or payload");
      }
      if (!Number.isFinite(recordedAt)) throw new Error("bad recordedAt");
      return {
        kind: json.kind,
        version: json.version,
        recordedAt,
        payload: new Uint8Array(Buffer.from(json.payload, "base64")),
      };
    } catch (error) {
      throw new OmniRelayError({
        status: "data-loss",
        code: ErrorCodes.objectStorage.corrupt,
        message: `Deterministic record ${path} is unreadable: ${(error as Error).message}`,
        metadata: { key, reason: "record" },
        cause: error,
      });
    }
  }

  /**
   * Inserts or replaces a record, atomically.
   * @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required` for a blank key,
   *   `resourcelease.deterministic.record_invalid` (metadata `field`) for an invalid record.
   */
  async set(key: string, record: DeterministicRecord): Promise<void> {
    await this.write(key, record, false);
  }

  /**
   * Inserts the record when the key is absent; returns `false` (changing nothing) when present. Atomic across
   * processes sharing the folder.
   * @throws OmniRelayError invalid-argument `resourcelease.deterministic.key_required` for a blank key,
   *   `resourcelease.deterministic.record_invalid` (metadata `field`) for an invalid record.
   */
  tryAdd(key: string, record: DeterministicRecord): Promise<boolean> {
    return this.write(key, record, true);
  }

  private async write(key: string, record: DeterministicRecord, createOnly: boolean): Promise<boolean> {
    const path = this.pathOf(key);
    checkDeterministicRecord(record);
    const json: RecordJson = {
      kind: record.kind,
      version: record.version,
      recordedAt: new Date(record.recordedAt).toISOString(),
      payload: Buffer.from(record.payload).toString("base64"),
    };
    try {
      return await writeFileDurably(path, new TextEncoder().encode(JSON.stringify(json)), {
        createOnly,
        fsync: this.fsync,
      });
    } catch (error) {
      throw storeError(createOnly ? "tryAdd" : "set", key, error);
    }
  }

  private pathOf(key: string): string {
    const hash = createHash("sha256").update(checkStateStoreKey(key), "utf8").digest("hex").toUpperCase();
    return join(this.rootDirectory, hash.slice(0, 2), `${hash}.json`);
  }
}
