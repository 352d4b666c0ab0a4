/**
 * A set of integers kept as sorted, disjoint, non-adjacent ranges `[start, end]`. Ids come and go mostly in runs
 * (a drain takes pending items in id order, a restore brings them back in the same order), so a drain of a million
 * items is usually a handful of ranges.
 */
export class IdRanges {
  private readonly starts: number[] = [];
  private readonly ends: number[] = [];

  /** Number of ranges (not of ids). */
  get rangeCount(): number {
    return this.starts.length;
  }

  /** Index of the last range whose start is <= id, or -1. */
  private find(id: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (this.starts[mid]! <= id) lo = mid + 1;
      else hi = mid - 1;
    }
    return hi;
  }

  has(id: number): boolean {
    const i = this.find(id);
    return i >= 0 && id <= this.ends[i]!;
  }

  /** Adds every id of `[start, end]`. */
  add(start: number, end: number = start): void {
    if (end < start) return;
    const n = this.starts.length;
    // Fast path: at or past the end (ids mostly arrive in increasing order).
    if (n === 0 || start > this.ends[n - 1]! + 1) {
      this.starts.push(start);
      this.ends.push(end);
      return;
    }
    let i = this.find(start);
    if (i < 0 || this.ends[i]! + 1 < start) i++; // the first range that could touch [start, end]
    let j = i;
    let s = start;
    let e = end;
    while (j < this.starts.length && this.starts[j]! <= end + 1) {
      s = Math.min(s, this.starts[j]!);
      e = Math.max(e, this.ends[j]!);
      j++;
    }
    this.starts.splice(i, j - i, s);
    this.ends.splice(i, j - i, e);
  }

  /** Removes one id; false when it was not in the set. */
  delete(id: number): boolean {
    const i = this.find(id);
    if (i < 0 || id > this.ends[i]!) return false;
    const s = this.starts[i]!;
    const e = this.ends[i]!;
    if (s === e) {
      this.starts.splice(i, 1);
      this.ends.splice(i, 1);
    } else if (id === s) this.starts[i] = s + 1;
    else if (id === e) this.ends[i] = e - 1;
    else {
      this.ends[i] = id - 1;
      this.starts.splice(i + 1, 0, id + 1);
      this.ends.splice(i + 1, 0, e);
    }
    return true;
  }

  /** The ranges, in order. */
  toArray(): Array<[number, number]> {
    return this.starts.map((s, i) => [s, this.ends[i]!]);
  }
}
