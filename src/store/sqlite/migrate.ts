import { createHash } from "node:crypto";
import type BetterSqlite3 from "better-sqlite3";
import { MayflyError } from "../../errors/index.js";
import { mapSqliteError } from "./errors.js";
import type { Migration } from "./migrations/index.js";
import { checkOrder, missedStep } from "./migrations/migration.js";

const checksum = (sql: string) => createHash("sha256").update(sql).digest("hex");

/**
 * Applies each migration not yet recorded in schema_migrations, in order, each in its
 * own BEGIN IMMEDIATE transaction. The "already applied?" check happens inside that
 * transaction, so two processes migrating the same file at once apply each step once.
 * A database that records a step this build does not know, or a step whose SQL has
 * changed since it was applied, is refused rather than guessed at.
 */
export function applyMigrations(db: BetterSqlite3.Database, migrations: readonly Migration[]): void {
  checkOrder(migrations);
  try {
    // CURRENT_TIMESTAMP is the database's clock; nothing in the domain reads applied_at.
    db.exec(
      "CREATE TABLE IF NOT EXISTS schema_migrations (" +
        "version BIGINT NOT NULL PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, " +
        "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)",
    );
  } catch (e) {
    throw mapSqliteError(e, "migrate");
  }
  const known = migrations.at(-1)?.version ?? 0;
  for (const m of migrations) applyOne(db, m, known);
}

function applyOne(db: BetterSqlite3.Database, m: Migration, known: number): void {
  const sum = checksum(m.sql);
  try {
    db.exec("BEGIN IMMEDIATE");
  } catch (e) {
    throw mapSqliteError(e, "migrate");
  }
  try {
    const newest = db.prepare("SELECT MAX(version) AS v FROM schema_migrations").get() as {
      v: number | null;
    };
    if (newest.v !== null && newest.v > known) {
      throw new MayflyError(
        "config.invalid",
        `the database schema is at version ${newest.v}, newer than this build knows (${known})`,
      );
    }
    const row = db.prepare("SELECT checksum FROM schema_migrations WHERE version = ?").get(m.version) as
      | { checksum: string }
      | undefined;
    if (row) {
      if (row.checksum !== sum) {
        throw new MayflyError(
          "config.invalid",
          `migration ${m.version} (${m.name}) differs from the one applied to this database`,
        );
      }
    } else {
      if (newest.v !== null && newest.v > m.version) throw missedStep(m, newest.v);
      db.exec(m.sql);
      db.prepare("INSERT INTO schema_migrations (version, name, checksum) VALUES (?, ?, ?)").run(
        m.version,
        m.name,
        sum,
      );
    }
    db.exec("COMMIT");
  } catch (e) {
    if (db.inTransaction) db.exec("ROLLBACK");
    throw mapSqliteError(e, `migration ${m.version} (${m.name})`);
  }
}
