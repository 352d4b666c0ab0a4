/**
 * Pops entries off the front of an insertion-ordered `Map` without walking it from the start each time. A fresh
 * `for…of` starts at the table's first slot and steps over every entry deleted there since V8 last rehashed the
 * table, so popping one entry per call that way costs O(entries deleted): measured 19 µs per pop at 100,000 entries
 * and 320 µs at 1,000,000, against ~0.6 µs with one iterator kept across calls, as here.
 *
 * The map may change between calls: an entry deleted or set again (which moves it to the end) is recognised by its
 * value's identity and skipped where it was, so values must be objects that a re-insertion replaces. Internal.
 */
export class MapFront<K, V extends object> {
  private cursor: Iterator<[K, V]> | undefined;
  private head: [K, V] | undefined;

  constructor(private readonly map: Map<K, V>) {}

  /** Deletes entries from the front while `drop` says so; stops at the first one it keeps (which stays). */
  popWhile(drop: (value: V) => boolean): void {
    for (;;) {
      if (!this.head) {
        this.cursor ??= this.map.entries();
        const next = this.cursor.next();
        // Done only once every entry was passed, that is deleted: a new iterator starts at the next insertion.
        if (next.done) {
          this.cursor = undefined;
          return;
        }
        this.head = next.value;
      }
      const [key, value] = this.head;
      if (this.map.get(key) !== value) {
        this.head = undefined; // deleted or set again since it was read: not the front any more
        continue;
      }
      if (!drop(value)) return;
      this.map.delete(key);
      this.head = undefined;
    }
  }
}
