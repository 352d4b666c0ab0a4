import { randomUUID } from "node:crypto";
import type { ResourceLeaseItemPayload } from "@omnirelay/core";
import type { CatalogOperation, CatalogOperationType } from "./catalog.js";

/** The simulated lakehouse: catalogs, database prefixes and principals (as in the original demo). */
export const Lakehouse = {
  catalogs: ["fabric-lakehouse", "delta-lab", "governance-hub"],
  databasePrefixes: ["sales", "billing", "ml", "governance", "security"],
  principals: ["spark-streaming", "trino-bi", "governor", "fabric-sync", "delta-maintenance"],
} as const;

interface KnownTable {
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
 * Generates catalog operations: new tables while fewer than 5 are known (or 25% of the time), otherwise
 * AlterSchema (25%), CommitSnapshot (45%) or Vacuum (30%) on a known table, each with the next version and a new
 * requestId.
 */
export class LakehouseSimulation {
  private readonly tables: KnownTable[] = [];

  constructor(private readonly random: () => number = Math.random) {}

  /** The next operation. */
  next(): CatalogOperation {
    const principal = this.pick(Lakehouse.principals);
    if (this.tables.length < 5 || this.random() < 0.25) return this.create(principal);
    const table = this.pick(this.tables);
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

  private create(principal: string): CatalogOperation {
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
    const known: KnownTable = { catalog, database, table, version: 1, columns };
    this.tables.push(known);
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
    };
  }

  private pick<T>(list: readonly T[]): T {
    return list[Math.floor(this.random() * list.length)] as T;
  }
}

/** The work item of an operation: resourceType `lakehouse.catalog`, partition = catalog, JSON body, its requestId. */
export function catalogPayload(op: CatalogOperation, resourceId?: string): ResourceLeaseItemPayload {
  return {
    resourceType: "lakehouse.catalog",
    resourceId: resourceId ?? `${op.catalog}.${op.database}.${op.table}.v${String(op.version).padStart(4, "0")}`,
    partitionKey: op.catalog,
    payloadEncoding: "application/json",
    body: encoder.encode(JSON.stringify(op)),
    attributes: {
      catalog: op.catalog,
      database: op.database,
      table: op.table,
      operation: op.operationType,
      version: String(op.version),
    },
    requestId: op.requestId,
  };
}
