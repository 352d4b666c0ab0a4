/** Ids per page: 2 KB of slots. */
const PAGE = 256;
/** A page older than the newest one that holds this many values or fewer moves them to the overflow map. */
const SPARSE = 16;

interface Page<T> {
  readonly slots: (T | undefined)[];
  count: number;
}

/**
 * A map from integer ids to values, for ids handed out mostly in increasing order (a queue's sequence ids): pages of
 * 256 slots, so setting and reading an id is an array store or load instead of a hash table's, and a million ids
 * need no rehash (in a restart, `Map.set` was ~0.4 µs of each restored item). Values left behind in an old page (an
 * item delayed for a day among thousands that were done) do not keep it: once an old page holds 16 or fewer, they
 * move to an ordinary `Map` and the page goes, so memory stays within a small factor of a `Map`'s whatever the
 * pattern. Ids are safe integers; order of {@link values} is not the ids' order. Internal.
 */
export class IdTable<T> {
  private readonly pages = new Map<number, Page<T>>();
  /** Values of ids whose page is gone (or never made: an id below the newest page's when it arrived). */
  private readonly overflow = new Map<number, T>();
  /** The highest page number ever made; pages are made only at or above it, never again below. */
  private newest = -1;
  private count = 0;
  /** The page read or written last (consecutive ids share it). */
  private lastNumber = -1;
  private last: Page<T> | undefined;

  get size(): number {
    return this.count;
  }

  get(id: number): T | undefined {
    const page = this.page(Math.floor(id / PAGE));
    return page ? page.slots[id % PAGE] : this.overflow.get(id);
  }

  has(id: number): boolean {
    return this.get(id) !== undefined;
  }

  /** Sets the value of `id` (never `undefined`: {@link delete} removes one). */
  set(id: number, value: T): this {
    const n = Math.floor(id / PAGE);
    let page = this.page(n);
    // No id of a page at or above the newest is ever in the overflow map (it takes ids only of pages below it).
    if (page === undefined && n >= this.newest) {
      page = { slots: new Array<T | undefined>(PAGE).fill(undefined), count: 0 };
      this.pages.set(n, page);
      this.newest = n;
      this.lastNumber = n;
      this.last = page;
    }
    if (page === undefined) {
      if (!this.overflow.has(id)) this.count++;
      this.overflow.set(id, value);
      return this;
    }
    const slot = id % PAGE;
    if (page.slots[slot] === undefined) {
      page.count++;
      this.count++;
    }
    page.slots[slot] = value;
    return this;
  }

  delete(id: number): boolean {
    const n = Math.floor(id / PAGE);
    const page = this.page(n);
    if (page === undefined) {
      const had = this.overflow.delete(id);
      if (had) this.count--;
      return had;
    }
    const slot = id % PAGE;
    if (page.slots[slot] === undefined) return false;
    page.slots[slot] = undefined;
    page.count--;
    this.count--;
    if (page.count === 0 || (page.count <= SPARSE && n < this.newest)) this.retire(n, page);
    return true;
  }

  /** Every value: the pages', then the overflow's. */
  *values(): IterableIterator<T> {
    for (const page of this.pages.values()) {
      for (const value of page.slots) if (value !== undefined) yield value;
    }
    yield* this.overflow.values();
  }

  private page(n: number): Page<T> | undefined {
    if (n === this.lastNumber) return this.last;
    const page = this.pages.get(n);
    if (page !== undefined) {
      this.lastNumber = n;
      this.last = page;
    }
    return page;
  }

  /** Drops a page, moving what it still holds to the overflow map (an empty newest page is simply made again). */
  private retire(n: number, page: Page<T>): void {
    for (let slot = 0; slot < PAGE; slot++) {
      const value = page.slots[slot];
      if (value !== undefined) this.overflow.set(n * PAGE + slot, value);
    }
    this.pages.delete(n);
    if (this.lastNumber === n) {
      this.lastNumber = -1;
      this.last = undefined;
    }
  }
}
