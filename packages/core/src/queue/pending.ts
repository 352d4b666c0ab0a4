import type { ResourceLeaseItemPayload } from "../contracts/payload.js";
import { MinHeap } from "../util/heap.js";
import { IndexedHeap } from "../util/indexed-heap.js";
import { itemLess, KeyItems } from "./key-items.js";
import { busiestKeys, type ResourceLeaseKeyStats } from "./key-stats.js";
import type { ItemRecord } from "./records.js";

/**
 * How the pending set picks the next item: which key an item belongs to, how many leases a key may hold at once, how
 * many grants it may take per interval, whether keys share by weighted round-robin, and priority aging.
 */
export interface DispatchRules {
  /** The key of an item; undefined puts every item under one key. */
  readonly keyOf?: (payload: ResourceLeaseItemPayload) => string;
  /** Most active leases per key. @defaultValue Infinity */
  readonly maxActive?: number;
  /** Per-key overrides of `maxActive`. */
  readonly maxActiveByKey?: ReadonlyMap<string, number>;
  /** Most grants per key within `rate.intervalMs` (a fixed window from the first grant). */
  readonly rate?: { readonly grants: number; readonly intervalMs: number };
  /** Weighted round-robin across keys with pending work instead of one global priority order. */
  readonly fair?: boolean;
  /** Per-key weights (fair sharing). @defaultValue 1 for every key */
  readonly weights?: ReadonlyMap<string, number>;
  /** With aging, an item gains one priority level per `agingMs` waited; 0 is off. */
  readonly agingMs?: number;
}

/**
 * Per-key dispatch state in a snapshot: the fair-sharing virtual time and `[key, pass, windowStart, windowGrants,
 * blockedUntil]` for each key whose state a restore could not derive from its items (windowStart is 0 when the key
 * has no rate window).
 */
export interface ResourceLeaseDispatchSnapshot {
  readonly vtime: number;
  readonly keys: readonly (readonly [string, number, number, number, number])[];
}

/** The pending items of one key. */
interface KeyGroup {
  readonly key: string;
  readonly items: KeyItems;
  active: number;
  readonly cap: number;
  readonly stride: number;
  /** Fair sharing: virtual time of the key's next grant. */
  pass: number;
  /** Position in the eligible heap, -1 when not eligible. */
  heapIndex: number;
  windowStart: number;
  windowGrants: number;
  /** End of the rate window that blocks the key, 0 when not blocked. */
  blockedUntil: number;
}

/**
 * The pending items and the one structure that decides which is granted next. Items are grouped by key (one group
 * without keys); each group holds its items by priority then arrival (a FIFO run plus a heap: see KeyItems); eligible groups (items waiting, under their active
 * cap and rate) sit in a heap by their best item (global priority order) or, with fair sharing, by virtual time
 * (weighted round-robin, stride scheduling). Push, remove and lease are O(log n + log k); a group that cannot lease is
 * not in the eligible heap, so finding nothing leaseable is O(1). Delayed items are not here: they wait in the
 * queue's timer heap and join when due.
 */
export class PendingItems {
  private head: ItemRecord | undefined;
  private tail: ItemRecord | undefined;
  private count = 0;
  private nextRank = 0;
  /** Fair sharing: the virtual time of the last grant. */
  private vtime = 0;
  private readonly groups = new Map<string, KeyGroup>();
  private readonly eligible: IndexedHeap<KeyGroup>;
  private readonly blocked = new MinHeap<{ at: number; group: KeyGroup }>((a, b) => a.at < b.at);
  private readonly single: boolean;
  /** Whether leases are counted per key (any keys: caps, rates and fair sharing need them, `busiest` reports them). */
  private readonly tracksLeases: boolean;

  constructor(private readonly rules: DispatchRules = {}) {
    this.single = rules.keyOf === undefined;
    this.tracksLeases = !this.single;
    const byItem = (a: KeyGroup, b: KeyGroup) => itemLess(a.items.peek()!, b.items.peek()!);
    this.eligible = new IndexedHeap<KeyGroup>(
      rules.fair ? (a, b) => a.pass < b.pass || (a.pass === b.pass && byItem(a, b)) : byItem,
    );
  }

  get size(): number {
    return this.count;
  }

  /** Heap comparisons made so far (items and keys): what complexity tests assert on. */
  get comparisons(): number {
    let n = this.eligible.comparisons + this.blocked.comparisons;
    for (const g of this.groups.values()) n += g.items.comparisons;
    return n + this.retiredComparisons;
  }
  private retiredComparisons = 0;
  /** The latest lease start seen: a rate window that ended before it no longer counts (see {@link windowEnded}). */
  private lastLeaseAt = Number.NEGATIVE_INFINITY;
  /** Leases until the next sweep of keys whose rate window ended ({@link sweepEndedWindows}). */
  private leasesToSweep = 1024;

  /** Number of keys held: with pending items or active leases, or a rate window not yet swept. */
  get keyCount(): number {
    return this.groups.size;
  }

  /** Adds an item: the newest of its priority. Aging counts from its enqueue or, if later, its `notBefore`. */
  push(item: ItemRecord): void {
    item.prev = this.tail;
    item.next = undefined;
    if (this.tail) this.tail.next = item;
    else this.head = item;
    this.tail = item;
    this.count++;
    item.rank = this.nextRank++;
    const priority = item.meta.priority ?? 0;
    const aging = this.rules.agingMs ?? 0;
    const base = Math.max(item.enqueuedAt, item.meta.notBefore ?? 0);
    item.order = aging > 0 ? priority - base / aging : priority;
    const g = this.group(this.keyOf(item));
    const wasEmpty = g.items.size === 0;
    g.items.push(item);
    if (wasEmpty) this.refresh(g, true);
    else if (g.items.peek() === item) this.eligible.update(g);
  }

  /** Removes a pending item. */
  remove(item: ItemRecord): void {
    if (item.prev) item.prev.next = item.next;
    else this.head = item.next;
    if (item.next) item.next.prev = item.prev;
    else this.tail = item.prev;
    item.prev = undefined;
    item.next = undefined;
    this.count--;
    const g = this.groups.get(this.keyOf(item));
    if (!g) return;
    const wasHead = g.items.peek() === item;
    g.items.remove(item);
    if (g.items.size === 0) this.refresh(g, false);
    else if (wasHead) this.eligible.update(g);
  }

  /** The item the next grant takes at `now`, without removing it. */
  peekLeaseable(now: number): ItemRecord | undefined {
    this.unblockDue(now);
    return this.eligible.peek()?.items.peek();
  }

  /**
   * Lets keys whose rate window ended by `now` lease again. The queue's state calls it before every event it applies
   * (at the event's time) as well as before every pick, so a rebuild unblocks keys at the same points as the live queue.
   */
  unblockDue(now: number): void {
    for (let top = this.blocked.peek(); top && top.at <= now; top = this.blocked.peek()) {
      this.blocked.pop();
      if (top.group.blockedUntil !== top.at) continue;
      top.group.blockedUntil = 0;
      this.refresh(top.group, false);
    }
  }

  /** When a key blocked by its rate may lease again (for the queue's timer), if any is. */
  nextUnblock(): number | undefined {
    return this.blocked.peek()?.at;
  }

  /**
   * Records that `item` (just removed) was leased at `at`: its key's active count, rate window and virtual time.
   * Without `at` (a lease loaded from a snapshot) only the active count.
   */
  leaseStarted(item: ItemRecord, at?: number): void {
    if (!this.tracksLeases) return;
    const g = this.group(this.keyOf(item));
    g.active++;
    if (at === undefined) {
      this.refresh(g, false);
      return;
    }
    if (this.rules.fair) {
      this.vtime = g.pass;
      g.pass += g.stride;
      this.eligible.update(g); // its key moved: still eligible, it now waits behind keys with less virtual time
    }
    const rate = this.rules.rate;
    if (rate) {
      if (at > this.lastLeaseAt) this.lastLeaseAt = at;
      if (at >= g.windowStart + rate.intervalMs) {
        g.windowStart = at;
        g.windowGrants = 0;
      }
      if (++g.windowGrants >= rate.grants) {
        g.blockedUntil = g.windowStart + rate.intervalMs;
        this.blocked.push({ at: g.blockedUntil, group: g });
      }
    }
    this.refresh(g, false);
    if (rate && --this.leasesToSweep <= 0) this.sweepEndedWindows();
  }

  /**
   * Whether a key's rate window is over (as of the latest lease): its count no longer matters, so a key without items
   * or leases may be forgotten; one that comes back starts a new window, as it would have anyway.
   */
  private windowEnded(g: KeyGroup): boolean {
    return g.windowGrants === 0 || this.lastLeaseAt >= g.windowStart + this.rules.rate!.intervalMs;
  }

  /**
   * Forgets the keys that hold nothing and whose rate window ended. A key leased fewer than `grants` times in its
   * window was otherwise kept for good: 100,000 one-off tenants held ~64 MiB after their items were done. The next
   * sweep comes after as many leases as keys are left (at least 1024), so its cost per lease stays constant.
   */
  private sweepEndedWindows(): void {
    for (const g of this.groups.values()) {
      if (g.items.size === 0 && g.active === 0 && g.blockedUntil === 0 && this.windowEnded(g)) {
        this.retiredComparisons += g.items.comparisons;
        this.groups.delete(g.key);
      }
    }
    this.leasesToSweep = Math.max(1024, this.groups.size);
  }

  /**
   * The dispatch state a snapshot must carry so a restored queue grants in the same order as the live one: the virtual
   * time (fair sharing) and, per key, its pass, rate window and block, for keys whose state is not the default one a
   * key gets when its first item arrives. Undefined when there is nothing to carry.
   */
  exportDispatch(): ResourceLeaseDispatchSnapshot | undefined {
    const keys: Array<readonly [string, number, number, number, number]> = [];
    for (const g of this.groups.values()) {
      // A window that ended is left out, whether or not a sweep has forgotten its key yet.
      const window = g.windowGrants > 0 && !this.windowEnded(g);
      if (window || (this.rules.fair && g.pass !== this.vtime)) {
        keys.push([g.key, g.pass, window ? g.windowStart : 0, window ? g.windowGrants : 0, g.blockedUntil]);
      }
    }
    keys.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)); // by key: equal states give equal snapshots
    return keys.length > 0 || this.vtime !== 0 ? { vtime: this.vtime, keys } : undefined;
  }

  /** Sets the virtual time before a snapshot's items are loaded (keys they create start at it). */
  importVirtualTime(vtime: number): void {
    this.vtime = vtime;
  }

  /** Applies a snapshot's per-key dispatch state after its pending items and leases are loaded. */
  importDispatchKeys(keys: ResourceLeaseDispatchSnapshot["keys"]): void {
    for (const [key, pass, windowStart, windowGrants, blockedUntil] of keys) {
      const g = this.group(key);
      g.pass = pass;
      g.windowGrants = windowGrants;
      g.windowStart = windowGrants > 0 ? windowStart : Number.NEGATIVE_INFINITY;
      g.blockedUntil = blockedUntil;
      if (blockedUntil > 0) this.blocked.push({ at: blockedUntil, group: g });
      if (g.heapIndex >= 0) this.eligible.update(g);
      this.refresh(g, false);
    }
  }

  /** Records that a lease of `item` ended; its key may become eligible again. */
  leaseEnded(item: ItemRecord): void {
    if (!this.tracksLeases) return;
    const g = this.groups.get(this.keyOf(item));
    if (!g) return;
    g.active = Math.max(0, g.active - 1);
    this.refresh(g, false);
  }

  /** Active leases and pending items of a key. */
  keyStats(key: string): { active: number; pending: number } {
    const g = this.groups.get(key);
    return { active: g?.active ?? 0, pending: g?.items.size ?? 0 };
  }

  /** The `top` busiest keys, active + pending descending; none without keys. O(k log top): see `busiestKeys`. */
  busiest(top: number): ResourceLeaseKeyStats[] {
    return this.single ? [] : busiestKeys(this.groups.values(), top);
  }

  /** Items in arrival order. */
  *values(): IterableIterator<ItemRecord> {
    for (let i = this.head; i; i = i.next) yield i;
  }

  /** Items in arrival order, as an array (a snapshot's capture: no generator step per item). */
  toArray(): ItemRecord[] {
    const out: ItemRecord[] = [];
    for (let i = this.head; i; i = i.next) out.push(i);
    return out;
  }

  private keyOf(item: ItemRecord): string {
    return this.single ? "" : this.rules.keyOf!(item.meta);
  }

  private group(key: string): KeyGroup {
    let g = this.groups.get(key);
    if (!g) {
      const weight = this.rules.weights?.get(key) ?? 1;
      g = {
        key,
        items: new KeyItems(),
        active: 0,
        cap: this.rules.maxActiveByKey?.get(key) ?? this.rules.maxActive ?? Number.POSITIVE_INFINITY,
        stride: 1 / weight,
        pass: this.vtime,
        heapIndex: -1,
        windowStart: Number.NEGATIVE_INFINITY,
        windowGrants: 0,
        blockedUntil: 0,
      };
      this.groups.set(key, g);
    }
    return g;
  }

  /**
   * Puts a key in or out of the eligible heap as its state says; `arrived` marks a key whose first item just came
   * (fair sharing starts it at the current virtual time, so an idle key neither jumps the queue nor waits for its debt).
   */
  private refresh(g: KeyGroup, arrived: boolean): void {
    const ok = g.items.size > 0 && g.active < g.cap && g.blockedUntil === 0;
    if (ok && g.heapIndex < 0) {
      if (this.rules.fair && (arrived || g.pass < this.vtime)) g.pass = Math.max(g.pass, this.vtime);
      this.eligible.push(g);
    } else if (!ok && g.heapIndex >= 0) {
      this.eligible.remove(g);
    }
    // A key under a rate is kept while it has a window (forgetting it would reset its count).
    const idle = g.active === 0 && g.blockedUntil === 0 && (this.rules.rate === undefined || this.windowEnded(g));
    if (g.items.size === 0 && idle && !this.single) {
      this.retiredComparisons += g.items.comparisons;
      this.groups.delete(g.key);
    }
  }
}
