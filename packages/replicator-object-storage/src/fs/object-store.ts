import type { Dirent } from "node:fs";
import { mkdir, readdir, readFile, realpath } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { CallOptions } from "@omnirelay/core";
import { OmniRelayError } from "@omnirelay/core";
import type { ObjectListEntry, ObjectPutOptions, ResourceLeaseObjectStore } from "@omnirelay/core/replication";
import { cancelledError, existsError, keyError, storeError } from "../errors.js";
import { TEMP_PREFIX, writeFileDurably } from "./durable-file.js";

/** Options of {@link FileSystemResourceLeaseObjectStore}. */
export interface FileSystemResourceLeaseObjectStoreOptions {
  /** Folder holding the objects (created on the first write). Key `a/b/c.jsonl` is the file `{root}/a/b/c.jsonl`. */
  readonly rootDirectory: string;
  /** fsync each file and its folder before a put resolves. Turn off only for tests. @defaultValue true */
  readonly fsync?: boolean;
}

/**
 * A {@link ResourceLeaseObjectStore} on a local or mounted filesystem. Each put writes a temp file, fsyncs it and
 * then renames it into place (or, for create-if-absent, hard-links it, which fails atomically when the key exists,
 * also across processes), then fsyncs the folder; readers never see a half-written object. Listing walks only the
 * folders that can hold keys after `startAfter`, in key order.
 */
export class FileSystemResourceLeaseObjectStore implements ResourceLeaseObjectStore {
  /** The absolute root folder. */
  readonly rootDirectory: string;
  private readonly fsync: boolean;
  private realRoot: string | undefined;

  /** @throws OmniRelayError invalid-argument `resourcelease.options.invalid` (metadata `option`). */
  constructor(options: FileSystemResourceLeaseObjectStoreOptions) {
    if (typeof options?.rootDirectory !== "string" || options.rootDirectory.trim().length === 0) {
      throw OmniRelayError.invalidOption("rootDirectory", "rootDirectory is required.");
    }
    this.rootDirectory = resolve(options.rootDirectory);
    this.fsync = options.fsync ?? true;
  }

  /**
   * Stores `bytes` under `key` atomically; with `ifNoneMatch: '*'` only when the key does not exist.
   * @throws OmniRelayError already-exists `resourcelease.objectstorage.exists`; invalid-argument
   *   `resourcelease.objectstorage.key_invalid`; unavailable `resourcelease.objectstorage.store_failed`.
   */
  async put(key: string, bytes: Uint8Array, options: ObjectPutOptions): Promise<void> {
    const path = this.pathOf(key);
    if (options.signal?.aborted) throw cancelledError(options.signal);
    let created: boolean;
    try {
      // Only the folders can lead out: rename and link replace or refuse a symbolic link at `path`, never follow it.
      await mkdir(this.rootDirectory, { recursive: true });
      await this.checkInside(key, await existingAncestor(dirname(path)));
      created = await writeFileDurably(path, bytes, { createOnly: options.ifNoneMatch === "*", fsync: this.fsync });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENAMETOOLONG") {
        throw keyError(key, "it is longer than the filesystem allows.");
      }
      throw storeError("put", key, error);
    }
    if (!created) throw existsError(key);
  }

  /**
   * Reads the object, `undefined` when it does not exist.
   * @throws OmniRelayError invalid-argument `resourcelease.objectstorage.key_invalid`; unavailable `…store_failed`.
   */
  async get(key: string, options: CallOptions = {}): Promise<Uint8Array | undefined> {
    const path = this.pathOf(key);
    if (options.signal?.aborted) throw cancelledError(options.signal);
    try {
      await this.checkInside(key, await realpath(path));
      return new Uint8Array(await readFile(path));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "EISDIR" || code === "ENOTDIR") return undefined;
      if (code === "ENAMETOOLONG") throw keyError(key, "it is longer than the filesystem allows.");
      throw storeError("get", key, error);
    }
  }

  /**
   * Lists keys starting with `prefix`, in key order, strictly after `startAfter`.
   * @throws OmniRelayError invalid-argument `resourcelease.objectstorage.key_invalid` for a bad prefix.
   */
  async *list(prefix: string, startAfter?: string, options: CallOptions = {}): AsyncGenerator<ObjectListEntry> {
    const slash = prefix.lastIndexOf("/");
    const folderKey = prefix.slice(0, slash + 1);
    if (folderKey.length > 0) this.pathOf(`${folderKey}x`);
    const folder = folderKey.length === 0 ? this.rootDirectory : join(this.rootDirectory, ...splitKey(folderKey));
    const scan: WalkScan = { startAfter, signal: options.signal };
    try {
      await this.checkInside(folderKey, await realpath(folder));
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return;
      throw storeError("list", folderKey, error);
    }
    yield* this.walk({ path: folder, key: folderKey }, prefix.slice(slash + 1), scan);
  }

  /** Lists the keys under one folder (`path` on disk, `key` its key prefix ending in "/"), recursively. */
  private async *walk(
    { path: folder, key: folderKey }: { path: string; key: string },
    namePrefix: string,
    scan: WalkScan,
  ): AsyncGenerator<ObjectListEntry> {
    const { startAfter, signal } = scan;
    if (signal?.aborted) throw cancelledError(signal);
    let entries: Dirent[];
    try {
      entries = await readdir(folder, { withFileTypes: true });
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "ENOENT" || code === "ENOTDIR") return;
      throw storeError("list", folderKey, error);
    }
    // A folder's keys all start with "name/", so sorting folders by "name/" gives the global key order.
    const items = entries
      .filter(
        (e) => e.name.startsWith(namePrefix) && !e.name.startsWith(TEMP_PREFIX) && (e.isFile() || e.isDirectory()),
      )
      .map((e) => ({ dir: e.isDirectory(), key: `${folderKey}${e.name}${e.isDirectory() ? "/" : ""}` }))
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    for (const item of items) {
      if (item.dir) {
        // Every key below the folder is greater than "name/"; skip the folder when startAfter is past all of them.
        if (startAfter !== undefined && item.key < startAfter && !startAfter.startsWith(item.key)) continue;
        yield* this.walk({ path: join(folder, item.key.slice(folderKey.length, -1)), key: item.key }, "", scan);
      } else if (startAfter === undefined || item.key > startAfter) {
        yield { key: item.key };
      }
    }
  }

  private pathOf(key: string): string {
    return join(this.rootDirectory, ...splitKey(key));
  }

  /**
   * Refuses a resolved path outside the root. Whoever can write the folder can plant a symbolic link in it (a file,
   * or a folder such as `events/00000000000001`), and following it would read or write outside the root.
   */
  private async checkInside(key: string, real: string): Promise<void> {
    this.realRoot ??= await realpath(this.rootDirectory);
    if (real === this.realRoot || real.startsWith(`${this.realRoot}${sep}`)) return;
    throw keyError(key, "it resolves outside the root directory through a symbolic link.");
  }
}

/** The real path of `folder`, or of its nearest existing ancestor when it does not exist yet. */
async function existingAncestor(folder: string): Promise<string> {
  for (let path = folder; ; path = dirname(path)) {
    try {
      return await realpath(path);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if ((code !== "ENOENT" && code !== "ENOTDIR") || dirname(path) === path) throw error;
    }
  }
}

/** What one `list` call looks for: keys strictly after `startAfter`, until `signal` aborts. */
interface WalkScan {
  readonly startAfter: string | undefined;
  readonly signal: AbortSignal | undefined;
}

/**
 * Splits a key into path segments, refusing anything that could escape the root or collide with temp files.
 * @throws OmniRelayError invalid-argument `resourcelease.objectstorage.key_invalid`.
 */
function splitKey(key: string): string[] {
  if (typeof key !== "string" || key.length === 0) throw keyError(String(key), "it is empty.");
  if (key.includes("\0") || key.includes("\\")) throw keyError(key, "it contains NUL or '\\'.");
  if (key.startsWith("/")) throw keyError(key, "it starts with '/'.");
  const parts = key.endsWith("/") ? key.slice(0, -1).split("/") : key.split("/");
  for (const part of parts) {
    if (part === "" || part === "." || part === "..") throw keyError(key, "it has an empty, '.' or '..' segment.");
    if (part.startsWith(TEMP_PREFIX)) throw keyError(key, `a segment starts with '${TEMP_PREFIX}'.`);
    if (part.includes(sep)) throw keyError(key, "a segment contains the path separator.");
  }
  return parts;
}
