import { OmniRelayError } from "@omnirelay/core";
import { DETERMINISTIC_EFFECT_KIND, DETERMINISTIC_VERSION_KIND } from "@omnirelay/core/deterministic";
import { integerOption } from "@omnirelay/core/wire";
import type Database from "better-sqlite3";

/**
 * Retention of a {@link SqliteDeterministicStateStore}: a job that deletes old records, so the file stops growing with
 * every event (the seed's "TTL policies for old records" and "retention job"). It deletes only the records it
 * selects — by default the two a `DeterministicResourceLeaseCoordinator` writes per event — never application state
 * stored beside them under other kinds. Give `maxAgeMs`, `maxRecords` or both.
 *
 * A deleted effect no longer guards its event: if that event is recorded again (a replay from further back than the
 * retention reaches), it is recorded and executed again. Keep retention longer than any replay can reach back — the
 * event log's own retention, a follower's lag.
 */
export interface SqliteDeterministicRetention {
  /** Delete selected records whose `recordedAt` is more than this far in the past. */
  readonly maxAgeMs?: number;
  /** Keep at most this many selected records: the newest by `recordedAt` (ties by key). */
  readonly maxRecords?: number;
  /**
   * Record kinds the job may delete.
   * @defaultValue ['omnirelay.effect', 'omnirelay.version'] (the coordinator's effect and version-gate records)
   */
  readonly kinds?: readonly string[];
  /** Also select records whose key starts with one of these (any kind), e.g. an application's idempotency claims. @defaultValue [] */
  readonly keyPrefixes?: readonly string[];
  /** How often the job runs: once at open (before `open` resolves), then every interval. @defaultValue 60000 */
  readonly intervalMs?: number;
}

/** A retention policy as in force: validated, defaults filled in (`maxAgeMs`/`maxRecords` undefined when not given). */
export interface SqliteDeterministicRetentionSettings {
  readonly maxAgeMs: number | undefined;
  readonly maxRecords: number | undefined;
  readonly kinds: readonly string[];
  readonly keyPrefixes: readonly string[];
  readonly intervalMs: number;
}

const MAX_TIMER = 2_147_483_647;

function strings(value: unknown, option: string, fallback: readonly string[]): readonly string[] {
  if (value === undefined) return fallback;
  if (!Array.isArray(value) || value.length > 100 || value.some((v) => typeof v !== "string" || v.length === 0)) {
    throw OmniRelayError.invalidOption(option, `${option} must be a list of at most 100 non-empty strings.`);
  }
  return [...new Set(value as string[])];
}

/**
 * Validates retention options. Internal.
 * @throws OmniRelayError invalid-argument `resourcelease.options.invalid`, metadata `option` (`retention.maxAgeMs`, ...).
 */
export function resolveRetention(
  r: SqliteDeterministicRetention | undefined,
): SqliteDeterministicRetentionSettings | undefined {
  if (r === undefined) return undefined;
  if (typeof r !== "object" || r === null)
    throw OmniRelayError.invalidOption("retention", "retention must be an object.");
  if (r.maxAgeMs !== undefined) integerOption("retention.maxAgeMs", r.maxAgeMs, { min: 1 });
  if (r.maxRecords !== undefined) integerOption("retention.maxRecords", r.maxRecords, { min: 0 });
  if (r.maxAgeMs === undefined && r.maxRecords === undefined) {
    throw OmniRelayError.invalidOption("retention", "retention needs maxAgeMs, maxRecords or both.");
  }
  const intervalMs = integerOption("retention.intervalMs", r.intervalMs, { min: 1, max: MAX_TIMER, fallback: 60_000 });
  const kinds = strings(r.kinds, "retention.kinds", [DETERMINISTIC_EFFECT_KIND, DETERMINISTIC_VERSION_KIND]);
  const keyPrefixes = strings(r.keyPrefixes, "retention.keyPrefixes", []);
  if (kinds.length === 0 && keyPrefixes.length === 0) {
    throw OmniRelayError.invalidOption("retention.kinds", "retention selects nothing: give kinds or keyPrefixes.");
  }
  return { maxAgeMs: r.maxAgeMs, maxRecords: r.maxRecords, kinds, keyPrefixes, intervalMs };
}

/** Most records deleted in one transaction; the job yields to the event loop between two. */
const BATCH = 2000;

/** Prepared statements of one store's retention. Internal. */
export class RetentionJob {
  private readonly olderThan: Database.Statement<unknown[]>;
  private readonly countSelected: Database.Statement<unknown[], { n: number }>;
  private readonly oldest: Database.Statement<unknown[]>;
  private readonly selectParams: readonly string[];

  constructor(
    db: Database.Database,
    quoted: string,
    readonly settings: SqliteDeterministicRetentionSettings,
  ) {
    const where = [
      ...(settings.kinds.length > 0 ? [`kind IN (${settings.kinds.map(() => "?").join(", ")})`] : []),
      ...settings.keyPrefixes.map(() => "substr(key, 1, length(?)) = ?"),
    ].join(" OR ");
    this.selectParams = [...settings.kinds, ...settings.keyPrefixes.flatMap((p) => [p, p])];
    // The inner SELECT walks the recorded_at index from the oldest; only selected records are counted or deleted.
    this.olderThan = db.prepare(
      `DELETE FROM ${quoted} WHERE key IN (SELECT key FROM ${quoted} WHERE recorded_at < ? AND (${where}) ORDER BY recorded_at LIMIT ${BATCH})`,
    );
    this.countSelected = db.prepare(`SELECT count(*) AS n FROM ${quoted} WHERE (${where})`);
    this.oldest = db.prepare(
      `DELETE FROM ${quoted} WHERE key IN (SELECT key FROM ${quoted} WHERE (${where}) ORDER BY recorded_at, key LIMIT ?)`,
    );
  }

  /**
   * Deletes what the policy says, in batches; `yieldNow` runs between batches and returns false to stop early (the
   * store was closed). Returns the number of records deleted.
   */
  async run(now: number, yieldNow: () => Promise<boolean>): Promise<number> {
    let deleted = 0;
    const { maxAgeMs, maxRecords } = this.settings;
    if (maxAgeMs !== undefined) {
      for (;;) {
        const n = this.olderThan.run(now - maxAgeMs, ...this.selectParams).changes;
        deleted += n;
        if (n < BATCH || !(await yieldNow())) break;
      }
    }
    if (maxRecords !== undefined) {
      let excess = (this.countSelected.get(...this.selectParams)?.n ?? 0) - maxRecords;
      while (excess > 0) {
        const n = this.oldest.run(...this.selectParams, Math.min(BATCH, excess)).changes;
        deleted += n;
        excess -= n;
        if (n === 0 || excess <= 0 || !(await yieldNow())) break;
      }
    }
    return deleted;
  }
}
