/** What an {@link IndexedHeap} entry carries: its position in the heap, -1 when it is in none. */
export interface HeapSlot {
  heapIndex: number;
}

/**
 * A binary min-heap ordered by `less` whose entries know their position, so any entry can be removed or re-placed
 * after its key changed in O(log n). An entry is in at most one such heap at a time. Internal to core.
 */
export class IndexedHeap<T extends HeapSlot> {
  private readonly items: T[] = [];
  /** Comparisons made so far: what tests assert complexity on. */
  comparisons = 0;

  constructor(private readonly less: (a: T, b: T) => boolean) {}

  get size(): number {
    return this.items.length;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(value: T): void {
    value.heapIndex = this.items.length;
    this.items.push(value);
    this.up(value.heapIndex);
  }

  /** Removes `value` (no effect when it is not in a heap). */
  remove(value: T): void {
    const i = value.heapIndex;
    if (i < 0 || this.items[i] !== value) return;
    const last = this.items.pop()!;
    value.heapIndex = -1;
    if (last === value) return;
    this.items[i] = last;
    last.heapIndex = i;
    this.update(last);
  }

  /** Restores the order after `value`'s key changed. */
  update(value: T): void {
    const i = value.heapIndex;
    if (i < 0) return;
    if (this.up(i) === i) this.down(i);
  }

  /** Entries in heap (not sorted) order. */
  values(): readonly T[] {
    return this.items;
  }

  private lt(a: T, b: T): boolean {
    this.comparisons++;
    return this.less(a, b);
  }

  private up(start: number): number {
    const items = this.items;
    let i = start;
    const value = items[i]!;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = items[parent]!;
      if (!this.lt(value, p)) break;
      items[i] = p;
      p.heapIndex = i;
      i = parent;
    }
    items[i] = value;
    value.heapIndex = i;
    return i;
  }

  private down(start: number): void {
    const items = this.items;
    const n = items.length;
    let i = start;
    const value = items[i]!;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && this.lt(items[r]!, items[l]!) ? r : l;
      if (!this.lt(items[c]!, value)) break;
      items[i] = items[c]!;
      items[i]!.heapIndex = i;
      i = c;
    }
    items[i] = value;
    value.heapIndex = i;
  }
}
