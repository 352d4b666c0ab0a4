/** Promises that resolve once a condition holds, checked again at each {@link Conditions.notify}. Internal. */
export class Conditions {
  private readonly waiters = new Set<() => void>();

  /** Resolves once `condition()` is true (checked now and at every notify). */
  until(condition: () => boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const check = () => {
        if (!condition()) return;
        this.waiters.delete(check);
        resolve();
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Checks every waiting condition again. */
  notify(): void {
    if (this.waiters.size === 0) return; // the common case, on every item: no array to copy
    for (const check of [...this.waiters]) check();
  }
}
