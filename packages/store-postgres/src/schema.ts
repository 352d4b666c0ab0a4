import type pg from "pg";
import { quoteIdentifier } from "./names.js";

const present = (rows: ReadonlyArray<{ present: boolean }>) => rows[0]?.present === true;

/**
 * Creates the schema and the table (with its `recorded_at` index) when absent. A table that exists is left as it is,
 * with no privilege beyond reading the catalog. Creation runs under an advisory lock per schema and looks again once
 * it holds it, so nodes starting together neither collide in the catalog nor create a table or index twice.
 */
export async function createTableIfAbsent(
  pool: pg.Pool,
  names: { readonly schema: string; readonly qualifiedTable: string },
): Promise<void> {
  const tableExists = "SELECT to_regclass($1) IS NOT NULL AS present";
  if (present((await pool.query<{ present: boolean }>(tableExists, [names.qualifiedTable])).rows)) return;
  const schema = quoteIdentifier(names.schema);
  const client = await pool.connect();
  const lock = [`omnirelay:${schema}`];
  try {
    // A session lock taken before the transaction: the transaction then starts after the last creator's commit, so
    // its catalog lookups see that creator's table (a lock taken inside it would leave them on an older catalog).
    await client.query("SELECT pg_advisory_lock(hashtext($1))", lock);
    await client.query("BEGIN");
    if (!present((await client.query<{ present: boolean }>(tableExists, [names.qualifiedTable])).rows)) {
      const schemaExists = "SELECT to_regnamespace($1) IS NOT NULL AS present";
      if (!present((await client.query<{ present: boolean }>(schemaExists, [schema])).rows)) {
        await client.query(`CREATE SCHEMA ${schema}`);
      }
      await client.query(
        `CREATE TABLE ${names.qualifiedTable} (
           key text COLLATE "C" PRIMARY KEY,
           kind text NOT NULL,
           version bigint NOT NULL,
           recorded_at double precision NOT NULL,
           payload bytea NOT NULL
         )`,
      );
      // Retention (prune) deletes the oldest records first.
      await client.query(`CREATE INDEX ON ${names.qualifiedTable} (recorded_at)`);
    }
    await client.query("COMMIT");
    await client.query("SELECT pg_advisory_unlock(hashtext($1))", lock);
    client.release();
  } catch (error) {
    // Closing the connection rolls back and lets go of the lock.
    client.release(true);
    throw error;
  }
}
