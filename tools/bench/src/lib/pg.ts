/**
 * The few `pg` calls the harness makes. `@types/pg` is not a dependency of this package, so `pg` is loaded by a
 * dynamic import and given this minimal type.
 */

/** A connected PostgreSQL client (subset of pg.Client). */
export interface PgClient {
  query(sql: string): Promise<{ rows: unknown[] }>;
  end(): Promise<void>;
}

const PG_MODULE: string = "pg";

/** Connects a new client. */
export async function connectPg(connectionString: string): Promise<PgClient> {
  const mod = (await import(PG_MODULE)) as {
    default: { Client: new (o: { connectionString: string }) => PgClient & { connect(): Promise<void> } };
  };
  const client = new mod.default.Client({ connectionString });
  await client.connect();
  return client;
}
