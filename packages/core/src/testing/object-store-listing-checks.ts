import { strictEqual } from "node:assert/strict";
import type { ObjectListEntry, ResourceLeaseObjectStore } from "../contracts/stores.js";
import { assertSame, collect } from "./conformance-support.js";

// The listing checks of the object-store suite (prefixes, order, startAfter paging, Unicode keys), and what every
// check of that suite shares. Internal: describeObjectStoreConformance registers them.

/** What each check of the object-store suite gets. Internal. */
export interface ObjectStoreSubject {
  readonly store: ResourceLeaseObjectStore;
  /** Keys of this check start with it: `conformance/<uuid>/`. */
  readonly prefix: string;
  readonly another: (() => Promise<ResourceLeaseObjectStore>) | undefined;
  readonly contentTypeOf: ((key: string) => Promise<string | undefined>) | undefined;
}

const encoder = new TextEncoder();
export const bytes = (text: string) => encoder.encode(text);
/** Byte order of UTF-8 keys, the order S3 and GCS list in. */
export const byteOrder = (a: string, b: string) => Buffer.compare(Buffer.from(a), Buffer.from(b));

/** The keys `list` returns. */
export async function keys(store: ResourceLeaseObjectStore, prefix: string, startAfter?: string): Promise<string[]> {
  return (await collect(store.list(prefix, startAfter))).map((entry) => entry.key);
}

/** Registers one check of the object-store suite. Internal. */
export type ObjectStoreCheck = (title: string, body: (subject: ObjectStoreSubject) => Promise<void>) => void;

/** Registers the listing checks with `check`. */
export function registerListingChecks(check: ObjectStoreCheck): void {
  check("lists every key with the prefix once, in byte order, and nothing else", async ({ store, prefix, another }) => {
    const inside = [
      `${prefix}b/2.json`,
      `${prefix}a0.json`,
      `${prefix}a/1.json`,
      `${prefix}b/1.json`,
      `${prefix}c.json`,
      `${prefix}a-x.json`,
      `${prefix}a/2/z.json`,
    ];
    // (Not the key `${prefix}` without its slash: a filesystem cannot hold a file and a folder of one name.)
    const outside = [`${prefix.slice(0, -1)}-other/x.json`, `${prefix.slice(0, -1)}.json`];
    // Contents with a two-byte character, so a size counted in characters shows.
    const content = (key: string) => bytes(`${key}: é`);
    for (const key of [...inside, ...outside]) await store.put(key, content(key), { contentType: "text/plain" });
    const sorted = [...inside].sort(byteOrder);
    for (const reader of another ? [store, await another()] : [store]) {
      const entries: ObjectListEntry[] = await collect(reader.list(prefix));
      assertSame(
        entries.map((e) => e.key),
        sorted,
        "list(prefix)",
      );
      for (const entry of entries) {
        if (entry.size !== undefined) strictEqual(entry.size, content(entry.key).byteLength, `size of ${entry.key}`);
      }
      assertSame(
        await keys(reader, `${prefix}a`),
        sorted.filter((k) => k.startsWith(`${prefix}a`)),
        "list of a prefix that ends inside a name",
      );
      assertSame(await keys(reader, `${prefix}b/`), [`${prefix}b/1.json`, `${prefix}b/2.json`], "list(prefix + 'b/')");
      assertSame(await keys(reader, `${prefix}none/`), [], "list of a prefix nothing has");
    }
  });

  check(
    "lists strictly after startAfter, and paging with the last key seen visits every key once",
    async ({ store, prefix }) => {
      const all = Array.from({ length: 9 }, (_, i) => `${prefix}k/${String(i).padStart(2, "0")}.json`);
      all.push(`${prefix}k/05/x`, `${prefix}k/050.json`);
      for (const key of all) await store.put(key, bytes("v"), { contentType: "text/plain" });
      const sorted = [...all].sort(byteOrder);
      const after = (key: string) => sorted.filter((k) => byteOrder(k, key) > 0);
      const starts = ["k/05.json", "k/04.jsonx", "k/05", "k/05/", "k/05/x", "k/"].map((k) => `${prefix}${k}`);
      for (const startAfter of [...starts, prefix, ""]) {
        assertSame(await keys(store, `${prefix}k/`, startAfter), after(startAfter), `list after ${startAfter}`);
      }
      assertSame(await keys(store, `${prefix}k/`, `${prefix}k/99`), [], "list after the last key");
      const paged: string[] = [];
      let last: string | undefined;
      for (let page = 0; page < all.length + 2; page++) {
        const taken: string[] = [];
        for await (const entry of store.list(`${prefix}k/`, last)) {
          taken.push(entry.key);
          if (taken.length === 2) break; // leaves the listing early, as a reader that stops at a page would
        }
        if (taken.length === 0) break;
        paged.push(...taken);
        last = taken.at(-1);
      }
      assertSame(paged, sorted, "keys visited by paging two at a time with startAfter");
    },
  );

  check("keys with '/', spaces, punctuation and Unicode round-trip and list", async ({ store, prefix }) => {
    const named = [
      `${prefix}u/a b.json`,
      `${prefix}u/a+b=c&d;e,f@g$h'i(j).json`,
      `${prefix}u/~tilde`,
      `${prefix}u/é.json`,
      `${prefix}u/ü/日本/файл.json`,
      `${prefix}u/%41 not an escape`,
    ];
    for (const key of named) await store.put(key, bytes(key), { contentType: "text/plain" });
    for (const key of named) assertSame(await store.get(key), bytes(key), `get(${key})`);
    assertSame(await keys(store, `${prefix}u/`), [...named].sort(byteOrder), "list of Unicode keys");
    assertSame(await keys(store, `${prefix}u/ü/`), [`${prefix}u/ü/日本/файл.json`], "list under a Unicode folder");
    const emoji = `${prefix}emoji/🙂.json`;
    await store.put(emoji, bytes("smile"), { contentType: "text/plain" });
    assertSame(await store.get(emoji), bytes("smile"), "get of a key outside the BMP");
    assertSame(await keys(store, `${prefix}emoji/`), [emoji], "list of a key outside the BMP");
  });
}
