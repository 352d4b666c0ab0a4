import type { ItemRecord } from "./records.js";

/**
 * Pending items in arrival order, with O(1) push, removal and next-leaseable lookup.
 * With ordered partitions, an item is leaseable only while no item of its partition is leased; the next
 * leaseable item is the head of the first ready partition (partitions become ready in FIFO order).
 */
export class PendingItems {
  private head: ItemRecord | undefined;
  private tail: ItemRecord | undefined;
  private count = 0;
  private readonly partitions = new Map<string, PartitionQueue>();
  /** Ready partitions (items waiting, none leased), FIFO. */
  private readonly ready = new ArrayQueue<PartitionQueue>();

  constructor(private readonly ordered: boolean) {}

  get size(): number {
    return this.count;
  }

  /** Appends an item at the tail. */
  push(item: ItemRecord): void {
    item.prev = this.tail;
    item.next = undefined;
    if (this.tail) this.tail.next = item;
    else this.head = item;
    this.tail = item;
    this.count++;
    if (this.ordered) {
      const p = this.partition(item.payload.partitionKey);
      p.items.push(item);
      this.markReady(p);
    }
  }

  /** Removes an item from anywhere in the list. */
  remove(item: ItemRecord): void {
    if (item.prev) item.prev.next = item.next;
    else this.head = item.next;
    if (item.next) item.next.prev = item.prev;
    else this.tail = item.prev;
    item.prev = undefined;
    item.next = undefined;
    this.count--;
    if (this.ordered) {
      const p = this.partitions.get(item.payload.partitionKey);
      if (p) {
        p.items.remove(item);
        this.prune(p);
      }
    }
  }

  /** The next item that may be leased now, without removing it. */
  peekLeaseable(): ItemRecord | undefined {
    if (!this.ordered) return this.head;
    for (;;) {
      const p = this.ready.peek();
      if (!p) return undefined;
      if (p.leased > 0 || p.items.length === 0) {
        // Stale ready entry: the partition got a lease or was emptied since it was queued.
        this.ready.shift();
        p.inReady = false;
        continue;
      }
      return p.items.peek();
    }
  }

  /** Records that an item of `partitionKey` was leased (ordered mode: the partition stops being ready). */
  leaseStarted(partitionKey: string): void {
    if (!this.ordered) return;
    this.partition(partitionKey).leased++;
  }

  /** Records that a lease of `partitionKey` ended; the partition may become ready again. */
  leaseEnded(partitionKey: string): void {
    if (!this.ordered) return;
    const p = this.partitions.get(partitionKey);
    if (!p) return;
    p.leased = Math.max(0, p.leased - 1);
    this.markReady(p);
    this.prune(p);
  }

  /** Items in arrival order. */
  *values(): IterableIterator<ItemRecord> {
    for (let i = this.head; i; i = i.next) yield i;
  }

  private partition(key: string): PartitionQueue {
    let p = this.partitions.get(key);
    if (!p) {
      p = { key, items: new ArrayQueue<ItemRecord>(), leased: 0, inReady: false };
      this.partitions.set(key, p);
    }
    return p;
  }

  private markReady(p: PartitionQueue): void {
    if (!p.inReady && p.leased === 0 && p.items.length > 0) {
      p.inReady = true;
      this.ready.push(p);
    }
  }

  private prune(p: PartitionQueue): void {
    if (p.items.length === 0 && p.leased === 0 && !p.inReady) this.partitions.delete(p.key);
  }
}

interface PartitionQueue {
  readonly key: string;
  readonly items: ArrayQueue<ItemRecord>;
  leased: number;
  inReady: boolean;
}

/** FIFO on an array with a moving head; O(1) amortised push/shift. */
class ArrayQueue<T> {
  private items: (T | undefined)[] = [];
  private start = 0;

  get length(): number {
    return this.items.length - this.start;
  }

  push(value: T): void {
    this.items.push(value);
  }

  peek(): T | undefined {
    return this.start < this.items.length ? this.items[this.start] : undefined;
  }

  shift(): T | undefined {
    if (this.start >= this.items.length) return undefined;
    const v = this.items[this.start];
    this.items[this.start] = undefined;
    this.start++;
    if (this.start > 1024 && this.start * 2 > this.items.length) {
      this.items = this.items.slice(this.start);
      this.start = 0;
    }
    return v;
  }

  /** Removes `value`; O(1) at the head, O(n) elsewhere (only replays and drains remove from the middle). */
  remove(value: T): void {
    if (this.peek() === value) {
      this.shift();
      return;
    }
    const i = this.items.indexOf(value, this.start);
    if (i >= 0) this.items.splice(i, 1);
  }
}
