import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ErrorCodes } from "@omnirelay/core";
import { describeDeterministicStoreConformance } from "@omnirelay/core/testing";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FileSystemDeterministicStateStore } from "../src/fs/index.js";
import { bundleFixture } from "./fixtures/bundle.js";

const record = (text: string, recordedAt = 1_700_000_000_000) => ({
  kind: "omnirelay.effect",
  version: 2,
  payload: new TextEncoder().encode(text),
  recordedAt,
});

function runChild(script: string, args: string[]): Promise<number[]> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (chunk: Buffer) => {
      out += chunk.toString();
    });
    child.stderr.on("data", (chunk: Buffer) => {
      err += chunk.toString();
    });
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(JSON.parse(out) as number[]) : reject(new Error(err))));
  });
}

const roots: string[] = [];
afterAll(async () => {
  for (const root of roots.splice(0)) await rm(root, { recursive: true, force: true });
});

const storeAt = async (rootDirectory: string) => ({
  rootDirectory,
  store: new FileSystemDeterministicStateStore({ rootDirectory }),
  close: async () => undefined,
});

describeDeterministicStoreConformance(
  "FileSystemDeterministicStateStore",
  {
    create: async () => {
      const root = await mkdtemp(join(tmpdir(), "omnirelay-fs-state-conformance-"));
      roots.push(root);
      return storeAt(root);
    },
    reopen: (closed) => storeAt(closed.rootDirectory),
    // Another store object on the same folder, as another process would have (test/fixtures races real processes).
    openAnother: (open) => storeAt(open.rootDirectory),
  },
  { test: { describe, it } },
);

// Semantics, round trips, keys, validation and racing instances: the conformance suite above. Here: the file layout,
// damage, and real processes racing.
describe("FileSystemDeterministicStateStore", () => {
  let root: string;
  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), "omnirelay-fs-state-"));
  });
  afterAll(() => rm(root, { recursive: true, force: true }));

  it("writes records in the original's file layout", async () => {
    const store = new FileSystemDeterministicStateStore({ rootDirectory: join(root, "basic") });
    expect(await store.tryAdd("k", record("first"))).toBe(true);
    await store.set("k", record("third", 5));
    // {root}/{H[0..2]}/{H}.json with H the uppercase SHA-256 of the key, as the C# store wrote it.
    const hash = "8254C329A92850F6D539DD376F4816EE2764517DA5E0235514AF433164480D7A";
    const file = JSON.parse(await readFile(join(root, "basic", hash.slice(0, 2), `${hash}.json`), "utf8"));
    expect(file).toEqual({
      kind: "omnirelay.effect",
      version: 2,
      recordedAt: "1970-01-01T00:00:00.005Z",
      payload: "dGhpcmQ=",
    });
    expect(await readdir(join(root, "basic", hash.slice(0, 2)))).toEqual([`${hash}.json`]);
  });

  it("reports an unreadable record as data-loss instead of crashing", async () => {
    const store = new FileSystemDeterministicStateStore({ rootDirectory: join(root, "corrupt") });
    await store.set("k", record("x"));
    const hash = "8254C329A92850F6D539DD376F4816EE2764517DA5E0235514AF433164480D7A";
    await writeFile(join(root, "corrupt", hash.slice(0, 2), `${hash}.json`), '{"kind":');
    await expect(store.get("k")).rejects.toMatchObject({ status: "data-loss", code: ErrorCodes.objectStorage.corrupt });
  });

  it("tryAdd is atomic across processes: each key is won by exactly one process", async () => {
    const bundle = await mkdtemp(join(tmpdir(), "omnirelay-fs-child-"));
    try {
      const child = await bundleFixture("try-add-child", bundle);
      const shared = join(root, "race");
      const keys = 40;
      const names = ["p0", "p1", "p2", "p3"];
      const results = await Promise.all(names.map((name) => runChild(child, [shared, String(keys), name])));
      const winners = results.flat().sort((a, b) => a - b);
      expect(winners).toEqual(Array.from({ length: keys }, (_, i) => i));
      const store = new FileSystemDeterministicStateStore({ rootDirectory: shared });
      for (const [index, won] of results.entries()) {
        for (const key of won) {
          expect(new TextDecoder().decode((await store.get(`key-${key}`))?.payload)).toBe(names[index]);
        }
      }
      expect(names).toContain(new TextDecoder().decode((await store.get("shared"))?.payload));
    } finally {
      await rm(bundle, { recursive: true, force: true });
    }
  }, 60_000);
});
