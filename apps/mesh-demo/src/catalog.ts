import type { DeterministicStateStore } from "@omnirelay/core/deterministic";

/** Catalog operations of the lakehouse simulation. */
export const CatalogOperationTypes = ["CreateTable", "AlterSchema", "CommitSnapshot", "Vacuum"] as const;

/** One of {@link CatalogOperationTypes}. */
export type CatalogOperationType = (typeof CatalogOperationTypes)[number];

/** A catalog operation: the JSON body of a work item. */
export interface CatalogOperation {
  readonly catalog: string;
  readonly database: string;
  readonly table: string;
  readonly operationType: CatalogOperationType;
  readonly version: number;
  readonly principal: string;
  readonly columns: readonly string[];
  readonly changes: readonly string[];
  readonly snapshotId?: string;
  readonly timestamp: string;
  readonly requestId: string;
  /** Whose operation it is: the dispatch key's tenant (see `catalogPayload`). @defaultValue `"tenant-interactive"` */
  readonly tenant?: string;
}

/** What applying an operation did. */
export type CatalogApplyOutcome = "Created" | "Updated" | "Duplicate" | "Stale";

/** A table of the catalog state. */
export interface CatalogTable {
  readonly catalog: string;
  readonly database: string;
  readonly table: string;
  readonly version: number;
  readonly columns: readonly string[];
  readonly lastOperation: CatalogOperationType;
  readonly lastPrincipal: string;
  readonly appliedBy: string;
  readonly updatedAt: string;
}

/** One applied (or skipped) operation, newest last. */
export interface CatalogOperationRecord {
  readonly requestId: string;
  readonly key: string;
  readonly operationType: CatalogOperationType;
  readonly version: number;
  readonly outcome: CatalogApplyOutcome;
  readonly appliedBy: string;
  readonly appliedAt: string;
}

/** The `/demo/catalogs` document. */
export interface CatalogView {
  readonly observedAt: string;
  readonly tableCount: number;
  readonly counts: Readonly<Record<CatalogApplyOutcome, number>>;
  readonly tables: readonly CatalogTable[];
  readonly recentOperations: readonly CatalogOperationRecord[];
}

const RECENT = 128;
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const KIND = "mesh-demo.catalog";

function tableKey(op: Pick<CatalogOperation, "catalog" | "database" | "table">): string {
  return `${op.catalog}::${op.database}::${op.table}`.toLowerCase();
}

/**
 * Validates an operation decoded from JSON.
 * @throws Error naming the bad field.
 */
export function parseCatalogOperation(value: unknown): CatalogOperation {
  const o = value as Record<string, unknown>;
  if (typeof o !== "object" || o === null) throw new Error("operation must be an object");
  for (const f of ["catalog", "database", "table", "principal", "timestamp", "requestId"] as const) {
    if (typeof o[f] !== "string" || (o[f] as string).length === 0) throw new Error(`operation.${f} must be a string`);
  }
  if (!(CatalogOperationTypes as readonly unknown[]).includes(o.operationType)) {
    throw new Error(`operation.operationType must be one of ${CatalogOperationTypes.join(", ")}`);
  }
  if (!Number.isSafeInteger(o.version) || (o.version as number) < 1) throw new Error("operation.version must be >= 1");
  const strings = (f: "columns" | "changes"): string[] => {
    const list = o[f] ?? [];
    if (!Array.isArray(list) || list.some((c) => typeof c !== "string"))
      throw new Error(`operation.${f} must be strings`);
    return list as string[];
  };
  return {
    catalog: o.catalog as string,
    database: o.database as string,
    table: o.table as string,
    operationType: o.operationType as CatalogOperationType,
    version: o.version as number,
    principal: o.principal as string,
    columns: strings("columns"),
    changes: strings("changes"),
    ...(typeof o.snapshotId === "string" ? { snapshotId: o.snapshotId } : {}),
    timestamp: o.timestamp as string,
    requestId: o.requestId as string,
    ...(typeof o.tenant === "string" ? { tenant: o.tenant } : {}),
  };
}

/**
 * The mesh's catalog state, held by the dispatcher node and persisted in its deterministic store: workers apply
 * operations to it through the `demo.catalog::apply` procedure, and `/demo/catalogs` shows it. Each requestId is
 * applied at most once (a `tryAdd` claim), so a redelivered item is a `Duplicate`, never a second change.
 */
export class CatalogState {
  private readonly tables = new Map<string, CatalogTable>();
  private readonly recent: CatalogOperationRecord[] = [];
  private readonly counts: Record<CatalogApplyOutcome, number> = { Created: 0, Updated: 0, Duplicate: 0, Stale: 0 };
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly store: DeterministicStateStore,
    private readonly shared: boolean,
  ) {}

  /**
   * Loads the state saved in `store`. `shared`: several nodes apply operations to the same store (the JetStream mode),
   * so each apply reads the table's current version from the store rather than from this node's memory, and the
   * table index is merged with the stored one instead of replacing it.
   */
  static async load(
    store: DeterministicStateStore,
    options: { readonly shared?: boolean } = {},
  ): Promise<CatalogState> {
    const state = new CatalogState(store, options.shared === true);
    const index = await state.readJson<string[]>("catalog.index");
    for (const key of index ?? []) {
      const table = await state.readJson<CatalogTable>(`catalog.table/${key}`);
      if (table) state.tables.set(key, table);
    }
    const meta = await state.readJson<{ recent: CatalogOperationRecord[]; counts: CatalogState["counts"] }>(
      "catalog.meta",
    );
    if (meta) {
      state.recent.push(...meta.recent.slice(-RECENT));
      Object.assign(state.counts, meta.counts);
    }
    return state;
  }

  /** Applies one operation (serialised with every other apply). */
  apply(op: CatalogOperation, appliedBy: string): Promise<CatalogOperationRecord> {
    const run = this.chain.then(() => this.applyNow(op, appliedBy));
    this.chain = run.catch(() => undefined);
    return run;
  }

  /** Whether a requestId was applied (any outcome but a redelivery). */
  async wasApplied(requestId: string): Promise<boolean> {
    return (await this.store.get(`catalog.op/${requestId}`)) !== undefined;
  }

  /** The `/demo/catalogs` view: up to `limit` tables, highest version first, and the recent operations. */
  view(limit = 50): CatalogView {
    const tables = [...this.tables.values()]
      .sort(
        (a, b) =>
          b.version - a.version ||
          a.catalog.localeCompare(b.catalog) ||
          a.database.localeCompare(b.database) ||
          a.table.localeCompare(b.table),
      )
      .slice(0, limit);
    return {
      observedAt: new Date().toISOString(),
      tableCount: this.tables.size,
      counts: { ...this.counts },
      tables,
      recentOperations: this.recent.slice(-limit).reverse(),
    };
  }

  private async applyNow(op: CatalogOperation, appliedBy: string): Promise<CatalogOperationRecord> {
    const key = tableKey(op);
    const stored = this.shared ? await this.readJson<CatalogTable>(`catalog.table/${key}`) : undefined;
    const current = stored ?? this.tables.get(key);
    let outcome: CatalogApplyOutcome;
    if (current === undefined) outcome = "Created";
    else if (op.version > current.version) outcome = "Updated";
    else if (op.version === current.version) outcome = "Duplicate";
    else outcome = "Stale";
    const now = new Date().toISOString();
    const record: CatalogOperationRecord = {
      requestId: op.requestId,
      key,
      operationType: op.operationType,
      version: op.version,
      outcome,
      appliedBy,
      appliedAt: now,
    };
    // The claim makes a redelivery (same requestId) a no-op, even across dispatcher restarts.
    const claimed = await this.store.tryAdd(`catalog.op/${op.requestId}`, {
      kind: KIND,
      version: op.version,
      payload: encoder.encode(JSON.stringify(record)),
      recordedAt: Date.now(),
    });
    if (!claimed) {
      const first = await this.readJson<CatalogOperationRecord>(`catalog.op/${op.requestId}`);
      const duplicate: CatalogOperationRecord = { ...record, outcome: "Duplicate" };
      this.remember(duplicate);
      await this.saveMeta();
      return first ? { ...first, outcome: "Duplicate" } : duplicate;
    }
    if (outcome === "Created" || outcome === "Updated") {
      const table: CatalogTable = {
        catalog: op.catalog,
        database: op.database,
        table: op.table,
        version: op.version,
        columns: mergeColumns(current?.columns ?? [], op),
        lastOperation: op.operationType,
        lastPrincipal: op.principal,
        appliedBy,
        updatedAt: now,
      };
      this.tables.set(key, table);
      await this.writeJson(`catalog.table/${key}`, table);
      if (current === undefined) await this.writeJson("catalog.index", await this.index());
    }
    this.remember(record);
    await this.saveMeta();
    return record;
  }

  /** The table keys to store as the index: this node's, and with a shared store also the ones stored by others. */
  private async index(): Promise<string[]> {
    const mine = [...this.tables.keys()];
    if (!this.shared) return mine;
    return [...new Set([...((await this.readJson<string[]>("catalog.index")) ?? []), ...mine])];
  }

  private remember(record: CatalogOperationRecord): void {
    this.counts[record.outcome]++;
    this.recent.push(record);
    if (this.recent.length > RECENT) this.recent.splice(0, this.recent.length - RECENT);
  }

  private saveMeta(): Promise<void> {
    return this.writeJson("catalog.meta", { recent: this.recent, counts: this.counts });
  }

  private async readJson<T>(key: string): Promise<T | undefined> {
    const record = await this.store.get(key);
    return record === undefined ? undefined : (JSON.parse(decoder.decode(record.payload)) as T);
  }

  private writeJson(key: string, value: unknown): Promise<void> {
    return this.store.set(key, {
      kind: KIND,
      version: 1,
      payload: encoder.encode(JSON.stringify(value)),
      recordedAt: Date.now(),
    });
  }
}

/** Columns after an operation: CreateTable sets them, AlterSchema adds or retypes one. */
function mergeColumns(existing: readonly string[], op: CatalogOperation): string[] {
  if (op.operationType === "CreateTable" || existing.length === 0) return [...op.columns];
  if (op.operationType !== "AlterSchema") return [...existing];
  const next = [...existing];
  for (const column of op.columns) {
    const name = column.split(" ")[0];
    const at = next.findIndex((c) => c.split(" ")[0] === name);
    if (at >= 0) next[at] = column;
    else next.push(column);
  }
  return next;
}
