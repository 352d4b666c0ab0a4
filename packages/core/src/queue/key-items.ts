import { IndexedHeap } from "../util/indexed-heap.js";
import type { ItemRecord } from "./records.js";

/** Higher order first, then arrival. */
export const itemLess = (a: ItemRecord, b: ItemRecord): boolean =>
  a.order > b.order || (a.order === b.order && a.rank < b.rank);

/** `heapIndex` of an item waiting in the run rather than the heap. */
const IN_RUN = -2;

/**
 * The pending items of one key, best first (priority, then arrival). Most items arrive no better than the last one
 * (one priority, or falling ones): those join a sorted run, a FIFO with O(1) push and pop. Only an item better than
 * the run's tail goes to the heap (O(log n)). The best item is the better of the two heads. Removal from the middle
 * of the run is lazy: the entry is skipped when it reaches the head (each entry carries its rank, so an item that was
 * removed and pushed again is not served at its old place).
 */
export class KeyItems {
  private readonly heap = new IndexedHeap<ItemRecord>(itemLess);
  /** Slots before `start` are cleared, so an item leased from the head is not kept alive by the run. */
  private run: Array<ItemRecord | undefined> = [];
  private ranks: number[] = [];
  private start = 0;
  private live = 0;
  /** Comparisons outside the heap (run tail and head checks). */
  private own = 0;

  get size(): number {
    return this.heap.size + this.live;
  }

  get comparisons(): number {
    return this.heap.comparisons + this.own;
  }

  push(item: ItemRecord): void {
    const last = this.run.length - 1;
    const tail = this.live > 0 ? this.run[last] : undefined;
    this.own++;
    const fits = tail !== undefined && this.isLive(tail, last) && !itemLess(item, tail);
    if (this.live === 0 || fits) {
      if (this.live === 0) this.compact();
      item.heapIndex = IN_RUN;
      this.run.push(item);
      this.ranks.push(item.rank);
      this.live++;
    } else {
      this.heap.push(item);
    }
  }

  remove(item: ItemRecord): void {
    if (item.heapIndex === IN_RUN) {
      item.heapIndex = -1;
      this.live--;
      // Trim stale entries at the tail too, so the run keeps taking new arrivals.
      while (this.run.length > this.start && !this.isLive(this.run[this.run.length - 1], this.run.length - 1)) {
        this.run.pop();
        this.ranks.pop();
      }
      this.skipStale();
    } else {
      this.heap.remove(item);
    }
  }

  peek(): ItemRecord | undefined {
    const a = this.heap.peek();
    const b = this.live > 0 ? this.run[this.start] : undefined;
    if (a === undefined) return b;
    if (b === undefined) return a;
    this.own++;
    return itemLess(a, b) ? a : b;
  }

  /** Whether the run's entry at `i` still stands for its item (not removed, not pushed again since). */
  private isLive(item: ItemRecord | undefined, i: number): boolean {
    return item !== undefined && item.heapIndex === IN_RUN && item.rank === this.ranks[i];
  }

  /** Drops entries at the head of the run that no longer stand for a pending item. */
  private skipStale(): void {
    const { run } = this;
    while (this.start < run.length && !this.isLive(run[this.start], this.start)) run[this.start++] = undefined;
    if (this.live === 0) this.compact();
    else if (this.start > 1024 && this.start * 2 > run.length) {
      this.run = run.slice(this.start);
      this.ranks = this.ranks.slice(this.start);
      this.start = 0;
    }
  }

  private compact(): void {
    this.run = [];
    this.ranks = [];
    this.start = 0;
  }
}
