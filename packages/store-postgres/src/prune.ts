import { OmniRelayError } from "@omnirelay/core";
import { DETERMINISTIC_EFFECT_KIND, DETERMINISTIC_VERSION_KIND } from "@omnirelay/core/deterministic";
import { integerOption } from "@omnirelay/core/wire";
import type pg from "pg";

/** Options of `PostgresDeterministicStateStore.prune`. */
export interface PostgresPruneOptions {
  /** Deletes records whose `recordedAt` is more than this many milliseconds before now. Required. */
  readonly maxAgeMs: number;
  /**
   * Record kinds that may be deleted; records of other kinds (your own state) are never deleted.
   * @defaultValue the coordinator's: `['omnirelay.effect', 'omnirelay.version']`
   */
  readonly kinds?: readonly string[];
  /** Rows one `DELETE` removes; each batch is its own short transaction. @defaultValue 2000 */
  readonly batchSize?: number;
}

/** {@link PostgresPruneOptions}, checked. */
export interface PruneSettings {
  readonly maxAgeMs: number;
  readonly kinds: readonly string[];
  readonly batchSize: number;
}

/** @throws OmniRelayError `resourcelease.options.invalid` naming the option. */
export function resolvePrune(options: PostgresPruneOptions): PruneSettings {
  const maxAgeMs = integerOption("maxAgeMs", options?.maxAgeMs, { min: 0 });
  const batchSize = integerOption("batchSize", options.batchSize, { min: 1, max: 100_000, fallback: 2000 });
  const kinds = options.kinds ?? [DETERMINISTIC_EFFECT_KIND, DETERMINISTIC_VERSION_KIND];
  if (!Array.isArray(kinds) || kinds.some((k) => typeof k !== "string" || k.trim().length === 0)) {
    throw OmniRelayError.invalidOption("kinds", "kinds must be a list of non-blank record kinds.");
  }
  return { maxAgeMs, kinds: [...kinds], batchSize };
}

/** Deletes, batch by batch, the selected records recorded before `cutoff`; returns how many. */
export async function pruneBefore(
  pool: pg.Pool,
  table: string,
  settings: PruneSettings & { readonly cutoff: number },
): Promise<number> {
  const sql = `DELETE FROM ${table} WHERE key IN (
      SELECT key FROM ${table} WHERE recorded_at < $1 AND kind = ANY($2::text[]) LIMIT $3)`;
  let deleted = 0;
  for (;;) {
    const result = await pool.query(sql, [settings.cutoff, settings.kinds, settings.batchSize]);
    const count = result.rowCount ?? 0;
    deleted += count;
    if (count < settings.batchSize) return deleted;
  }
}
