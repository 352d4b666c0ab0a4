/** A binary min-heap ordered by `less`. Internal to core. */
export class MinHeap<T> {
  private readonly items: T[] = [];
  /** Comparisons made so far: what tests assert complexity on (wall time is noisy). */
  comparisons = 0;
  private readonly less: (a: T, b: T) => boolean;
  constructor(less: (a: T, b: T) => boolean) {
    this.less = (a, b) => {
      this.comparisons++;
      return less(a, b);
    };
  }

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(value: T): void {
    const items = this.items;
    items.push(value);
    let i = items.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(items[i]!, items[parent]!)) break;
      [items[i], items[parent]] = [items[parent]!, items[i]!];
      i = parent;
    }
  }

  pop(): T | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    const top = items[0];
    const last = items.pop()!;
    if (items.length > 0) {
      items[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < items.length && this.less(items[l]!, items[m]!)) m = l;
        if (r < items.length && this.less(items[r]!, items[m]!)) m = r;
        if (m === i) break;
        [items[i], items[m]] = [items[m]!, items[i]!];
        i = m;
      }
    }
    return top;
  }

  /** Keeps only the entries for which `keep` is true (used to drop stale lazy-deleted entries). */
  retain(keep: (value: T) => boolean): void {
    const kept = this.items.filter(keep);
    this.items.length = 0;
    for (const v of kept) this.push(v);
  }

  clear(): void {
    this.items.length = 0;
  }
}
