import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isOmniRelayError, type OmniRelayError, type ResourceLeaseItemPayload } from "@omnirelay/core";
import { afterEach } from "vitest";

const dirs: string[] = [];

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** A fresh temp directory, removed after the test. */
export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "omnirelay-sqlite-"));
  dirs.push(dir);
  return dir;
}

/** A fresh database path in a temp directory. */
export function tempDb(name = "log.db"): string {
  return join(tempDir(), name);
}

/** A payload for tests. */
export function item(id: string | number, extra: Partial<ResourceLeaseItemPayload> = {}): ResourceLeaseItemPayload {
  return { resourceType: "table", resourceId: String(id), partitionKey: "p", payloadEncoding: "json", ...extra };
}

/** Awaits something that must throw an OmniRelayError and returns it. */
export async function rejection(run: Promise<unknown> | (() => unknown)): Promise<OmniRelayError> {
  try {
    await (typeof run === "function" ? run() : run);
  } catch (error) {
    if (!isOmniRelayError(error)) throw error;
    return error;
  }
  throw new Error("expected an OmniRelayError");
}
