import { createHash } from "node:crypto";
import type { Pool, PoolClient } from "pg";
import { MayflyError } from "../../errors/index.js";
import { checkOrder, missedStep } from "../sqlite/migrations/migration.js";
import { mapPgError } from "./errors.js";
import type { Migration } from "./migrations/index.js";

const checksum = (sql: string) => createHash("sha256").update(sql).digest("hex");

/**
 * The session advisory lock migrations run under: a constant 64-bit key (the ASCII bytes
 * "mayflymi" as a big-endian integer), the same for every replica of every version. Held
 * on one connection for the whole run; released at the end, or when the connection dies.
 */
export const MIGRATION_LOCK_KEY = "7881714303688600937";

/**
 * Applies each migration not yet recorded in schema_migrations, in order, each in its
 * own transaction (DDL is transactional in PostgreSQL: a step applies whole or not at
 * all). Replicas starting together take turns on an advisory lock, so the second finds
 * the first's steps recorded. As with SQLite, a database that records a step this build
 * does not know, or a step whose SQL has changed, is refused.
 */
export async function applyPgMigrations(pool: Pool, migrations: readonly Migration[]): Promise<void> {
  checkOrder(migrations);
  let client: PoolClient;
  try {
    client = await pool.connect();
  } catch (e) {
    throw mapPgError(e, "migrate");
  }
  let broken: unknown;
  try {
    await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
    try {
      await client.query(
        "CREATE TABLE IF NOT EXISTS schema_migrations (" +
          "version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, " +
          "applied_at TIMESTAMPTZ NOT NULL DEFAULT CURRENT_TIMESTAMP)",
      );
      const known = migrations.at(-1)?.version ?? 0;
      for (const m of migrations) await applyOne(client, m, known);
    } finally {
      await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
    }
  } catch (e) {
    broken = e;
    throw mapPgError(e, "migrate");
  } finally {
    // A connection that failed mid-way may still be in a transaction: discard it.
    client.release(broken instanceof Error ? broken : undefined);
  }
}

async function applyOne(client: PoolClient, m: Migration, known: number): Promise<void> {
  const sum = checksum(m.sql);
  await client.query("BEGIN");
  try {
    const newest = await client.query<{ v: string | null }>(
      "SELECT MAX(version)::TEXT AS v FROM schema_migrations",
    );
    const v = newest.rows[0]?.v;
    if (v !== null && v !== undefined && Number(v) > known) {
      throw new MayflyError(
        "config.invalid",
        `the database schema is at version ${v}, newer than this build knows (${known})`,
      );
    }
    const row = await client.query<{ checksum: string }>(
      "SELECT checksum FROM schema_migrations WHERE version = $1",
      [m.version],
    );
    const applied = row.rows[0];
    if (applied) {
      if (applied.checksum !== sum) {
        throw new MayflyError(
          "config.invalid",
          `migration ${m.version} (${m.name}) differs from the one applied to this database`,
        );
      }
    } else {
      if (v !== null && v !== undefined && Number(v) > m.version) throw missedStep(m, Number(v));
      await client.query(m.sql);
      await client.query("INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)", [
        m.version,
        m.name,
        sum,
      ]);
    }
    await client.query("COMMIT");
  } catch (e) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw mapPgError(e, `migration ${m.version} (${m.name})`);
  }
}
