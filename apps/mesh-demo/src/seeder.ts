import { randomUUID } from "node:crypto";
import type { ResourceLeaseClient, ResourceLeaseItemPayload, ResourceLeaseQueueOptions } from "@omnirelay/core";
import type { CatalogOperation, CatalogOperationType } from "./catalog.js";

/** The simulated lakehouse: catalogs, database prefixes and principals (as in the original demo). */
export const Lakehouse = {
  catalogs: ["fabric-lakehouse", "delta-lab", "governance-hub"],
  databasePrefixes: ["sales", "billing", "ml", "governance", "security"],
  principals: ["spark-streaming", "trino-bi", "governor", "fabric-sync", "delta-maintenance"],
} as const;

/**
 * The two tenants of the simulation: a bulk tenant that produces ~90% of the operations and an interactive one with
 * the rest. Each table belongs to one tenant.
 */
export const Tenants = { bulk: "tenant-bulk", interactive: "tenant-interactive" } as const;

/** Share of the simulation's operations that are the bulk tenant's. */
export const BULK_SHARE = 0.9;

/**
 * How the mesh's queues pick the next item: by dispatch key `<tenant>/<catalog>` (the item's partitionKey), one active
 * lease per key (each table's operations apply in order, as `orderedPartitions` did) and weighted round-robin across
 * the keys with pending work, so the bulk tenant's backlog cannot starve the interactive tenant.
 */
export const MESH_QUEUE_KEYS: NonNullable<ResourceLeaseQueueOptions["keys"]> = {
  by: "partitionKey",
  maxActive: 1,
  fair: true,
};

interface KnownTable {
  readonly tenant: string;
  readonly catalog: string;
  readonly database: string;
  readonly table: string;
  version: number;
  columns: string[];
}

/** What an operation does to a known table, besides the table itself. */
interface OperationParts {
  readonly operationType: CatalogOperationType;
  readonly principal: string;
  readonly columns: string[];
  readonly changes: string[];
  readonly snapshotId?: string | undefined;
}

const encoder = new TextEncoder();

/**
 * Generates catalog operations of the two {@link Tenants} (the bulk one {@link BULK_SHARE} of the time): new tables
 * while the tenant knows fewer than 5 (or 25% of the time), otherwise AlterSchema (25%), CommitSnapshot (45%) or
 * Vacuum (30%) on one of the tenant's tables, each with the next version and a new requestId.
 */
export class LakehouseSimulation {
  private readonly tables: KnownTable[] = [];
  private readonly byTenant = new Map<string, KnownTable[]>();

  constructor(private readonly random: () => number = Math.random) {}

  /** The next operation. */
  next(): CatalogOperation {
    const tenant = this.random() < BULK_SHARE ? Tenants.bulk : Tenants.interactive;
    const principal = this.pick(Lakehouse.principals);
    const own = this.byTenant.get(tenant) ?? [];
    if (own.length < 5 || this.random() < 0.25) return this.create(principal, tenant);
    const table = this.pick(own);
    const roll = this.random();
    const type: CatalogOperationType = roll < 0.25 ? "AlterSchema" : roll < 0.7 ? "CommitSnapshot" : "Vacuum";
    table.version++;
    let columns: string[] = [];
    let changes: string[];
    let snapshotId: string | undefined;
    if (type === "AlterSchema") {
      const retype = table.columns.find((c) => c.endsWith(" DOUBLE") || c.endsWith(" STRING"));
      if (retype && this.random() < 0.3) {
        const name = retype.split(" ")[0] as string;
        const column = retype.endsWith(" DOUBLE") ? `${name} DECIMAL(18,4)` : `${name} VARCHAR(256)`;
        table.columns = table.columns.map((c) => (c === retype ? column : c));
        columns = [column];
        changes = [`alter column ${column}`];
      } else {
        const column = `metric_${1 + Math.floor(this.random() * 19)} DOUBLE`;
        if (!table.columns.includes(column)) table.columns.push(column);
        columns = [column];
        changes = [`add column ${column}`];
      }
    } else if (type === "CommitSnapshot") {
      snapshotId = randomUUID();
      changes = [`commit snapshot ${snapshotId}`];
    } else {
      changes = [`vacuum retention=${7 + Math.floor(this.random() * 24)}d`];
    }
    return this.operation(table, { operationType: type, principal, columns, changes, snapshotId });
  }

  private create(principal: string, tenant: string): CatalogOperation {
    const catalog = this.pick(Lakehouse.catalogs);
    const prefix = this.pick(Lakehouse.databasePrefixes);
    const database = `${prefix}_db_${1 + Math.floor(this.random() * 4)}`;
    const existing = new Set(this.tables.map((t) => `${t.catalog}.${t.database}.${t.table}`));
    let table = "";
    do {
      table = `${prefix}_table_${String(Math.floor(this.random() * 1000)).padStart(3, "0")}`;
    } while (existing.has(`${catalog}.${database}.${table}`));
    const columns = ["table_id STRING", "created_at TIMESTAMP", "updated_at TIMESTAMP", "region STRING"];
    if (this.random() < 0.5) columns.push("tenant_id STRING");
    if (this.random() < 0.5) columns.push("is_deleted BOOLEAN");
    const known: KnownTable = { tenant, catalog, database, table, version: 1, columns };
    this.tables.push(known);
    this.byTenant.set(tenant, [...(this.byTenant.get(tenant) ?? []), known]);
    return this.operation(known, {
      operationType: "CreateTable",
      principal,
      columns: [...columns],
      changes: [`create table ${table}`],
    });
  }

  private operation(table: KnownTable, what: OperationParts): CatalogOperation {
    const { operationType, principal, columns, changes, snapshotId } = what;
    return {
      catalog: table.catalog,
      database: table.database,
      table: table.table,
      operationType,
      version: table.version,
      principal,
      columns,
      changes,
      ...(snapshotId ? { snapshotId } : {}),
      timestamp: new Date().toISOString(),
      requestId: randomUUID().replaceAll("-", ""),
      tenant: table.tenant,
    };
  }

  private pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)] as T;
  }
}

/**
 * The work item of an operation: resourceType `lakehouse.catalog`, partition (the dispatch key) `<tenant>/<catalog>`,
 * JSON body, its requestId. An operation without a tenant is the interactive tenant's.
 */
export function catalogPayload(op: CatalogOperation, resourceId?: string): ResourceLeaseItemPayload {
  const tenant = op.tenant ?? Tenants.interactive;
  return {
    resourceType: "lakehouse.catalog",
    resourceId: resourceId ?? `${op.catalog}.${op.database}.${op.table}.v${String(op.version).padStart(4, "0")}`,
    partitionKey: `${tenant}/${op.catalog}`,
    payloadEncoding: "application/json",
    body: encoder.encode(JSON.stringify(op)),
    attributes: {
      tenant,
      catalog: op.catalog,
      database: op.database,
      table: op.table,
      operation: op.operationType,
      version: String(op.version),
    },
    requestId: op.requestId,
  };
}

/** The seeder's cron schedule: a Vacuum of the maintenance table every 10 seconds. */
export const MAINTENANCE_SCHEDULE_ID = "catalog-maintenance";

/** The operation each maintenance slot applies (its version and requestId come from the slot: {@link slotOperation}). */
export const maintenanceOperation: CatalogOperation = {
  catalog: "governance-hub",
  database: "ops_db",
  table: "maint",
  operationType: "Vacuum",
  version: 1,
  principal: "delta-maintenance",
  columns: [],
  changes: ["scheduled vacuum retention=7d"],
  timestamp: "1970-01-01T00:00:00.000Z",
  requestId: MAINTENANCE_SCHEDULE_ID,
  tenant: Tenants.interactive,
};

/**
 * The schedule the seeder sets on the maintenance catalog's shard: 6-field cron (seconds first), UTC, and after a
 * stop the latest missed slot fires (`backfill: "latest"`). It lives in the shard's log, so it outlives the seeder and
 * survives a restart of the dispatcher.
 */
export function maintenanceSchedule(): Parameters<ResourceLeaseClient["setSchedule"]>[0] {
  return {
    id: MAINTENANCE_SCHEDULE_ID,
    cron: "*/10 * * * * *",
    timezone: "UTC",
    backfill: "latest",
    payload: catalogPayload(maintenanceOperation, "governance-hub.ops_db.maint.vacuum"),
  };
}

/**
 * What a worker applies for an item: its operation, except that a slot of the maintenance schedule (request id
 * `schedule:<id>:<slot ISO-8601>`) becomes that slot's own operation on the day's maintenance table
 * (`maint_YYYYMMDD`): version = the slot's 10-second step of the (UTC) day, 1 to 8640, so each slot is a
 * newer version; requestId from the slot; timestamp = the slot.
 */
export function slotOperation(op: CatalogOperation, itemRequestId: string | undefined): CatalogOperation {
  const prefix = `schedule:${MAINTENANCE_SCHEDULE_ID}:`;
  if (!itemRequestId?.startsWith(prefix)) return op;
  const slot = Date.parse(itemRequestId.slice(prefix.length));
  if (!Number.isFinite(slot)) return op;
  const iso = new Date(slot).toISOString();
  return {
    ...op,
    table: `${op.table}_${iso.slice(0, 10).replaceAll("-", "")}`,
    version: 1 + Math.floor((slot % 86_400_000) / 10_000),
    requestId: itemRequestId,
    timestamp: iso,
  };
}
