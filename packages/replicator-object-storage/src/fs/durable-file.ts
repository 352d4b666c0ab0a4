import { randomUUID } from "node:crypto";
import { link, mkdir, open, rename, rm } from "node:fs/promises";
import { dirname, join } from "node:path";

/** Prefix of temporary files; listings skip them. Internal. */
export const TEMP_PREFIX = ".tmp-";

/** fsyncs a directory so a rename or link in it survives a crash. Internal. */
export async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Writes `bytes` to `path` crash-safely: a temp file in the same folder, fsync, then `rename` (replace) or `link`
 * (create only: fails with `EEXIST` when `path` exists, atomically, even across processes), then fsync the folder.
 * Returns `false` when `createOnly` found the file. Internal.
 */
export async function writeFileDurably(
  path: string,
  bytes: Uint8Array,
  options: { readonly createOnly: boolean; readonly fsync: boolean },
): Promise<boolean> {
  const folder = dirname(path);
  await mkdir(folder, { recursive: true });
  const temp = join(folder, `${TEMP_PREFIX}${randomUUID()}`);
  const handle = await open(temp, "wx");
  try {
    await handle.writeFile(bytes);
    if (options.fsync) await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    if (options.createOnly) {
      try {
        await link(temp, path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === "EEXIST") return false;
        throw error;
      }
    } else {
      await rename(temp, path);
    }
  } finally {
    await rm(temp, { force: true });
  }
  if (options.fsync) await syncDirectory(folder);
  return true;
}
