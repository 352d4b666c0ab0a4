import { statSync } from "node:fs";
import { resolve } from "node:path";
import { lockedError } from "./errors.js";
import { isFilePath } from "./files.js";

/**
 * The logs this thread has open or is opening, by resolved path and by file (device and inode). A second open (or a
 * repair) of a log already open here is refused `locked` before it touches the file: opening then would read the file
 * through a descriptor of its own, and closing that descriptor drops every POSIX lock the process holds on the file,
 * the first connection's exclusive lock included, so another process could then open and write the same log. SQLite
 * guards its own connections against this; these reads are the package's. Internal.
 */
const claimed = new Set<string>();

/** A log's claim: released once its connection is closed. Internal. */
export interface LogClaim {
  /** Adds the file's id once it exists (a new log), so another path to the same file is refused too. */
  identify(): void;
  release(): void;
}

const NO_CLAIM: LogClaim = { identify: () => undefined, release: () => undefined };

function fileKey(path: string): string | undefined {
  const s = statSync(path, { throwIfNoEntry: false });
  return s ? `file:${s.dev}:${s.ino}` : undefined;
}

/** @throws the coded error of {@link assertNotOpenHere}. Internal. */
export function claimLog(path: string): LogClaim {
  if (!isFilePath(path)) return NO_CLAIM;
  assertNotOpenHere(path);
  const keys = [`path:${resolve(path)}`];
  const file = fileKey(path);
  if (file) keys.push(file);
  for (const key of keys) claimed.add(key);
  return {
    identify() {
      const id = fileKey(path);
      if (id && !keys.includes(id)) {
        keys.push(id);
        claimed.add(id);
      }
    },
    release() {
      for (const key of keys.splice(0)) claimed.delete(key);
    },
  };
}

/** @throws OmniRelayError unavailable `resourcelease.sqlite.locked` when this thread has the log open. Internal. */
export function assertNotOpenHere(path: string): void {
  if (!isFilePath(path)) return;
  const file = fileKey(path);
  if (claimed.has(`path:${resolve(path)}`) || (file !== undefined && claimed.has(file))) throw lockedError(path);
}
