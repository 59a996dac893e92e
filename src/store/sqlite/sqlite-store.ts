import { AsyncLocalStorage } from "node:async_hooks";
import type BetterSqlite3 from "better-sqlite3";
import Database from "better-sqlite3";
import { MayflyError } from "../../errors/index.js";
import type { Store, StoreTx } from "../store.js";
import { mapSqliteError } from "./errors.js";
import { applyMigrations } from "./migrate.js";
import { SQLITE_MIGRATIONS } from "./migrations/index.js";
import { SqliteTx } from "./sqlite-tx.js";

export type SqliteDurability = "full" | "normal";

export interface SqliteStoreOptions {
  /** A file path, or ":memory:" (one connection, so one private database). */
  path: string;
  /**
   * "full" (default): every commit is fsynced before tx() resolves, so a certificate
   * that was returned survives power loss. "normal": WAL commits are durable against a
   * process crash but the last ones may be lost on power loss; for benchmarks and tests.
   */
  durability?: SqliteDurability;
  /** How long to wait for another process's write lock before store.conflict. Default 5000 ms. */
  busyTimeoutMs?: number;
}

/**
 * The embedded Store over one better-sqlite3 connection. better-sqlite3 is synchronous,
 * but tx() callbacks are async (they may await a signer between reads and writes), so
 * transactions are queued: one runs at a time, start to finish, on the one connection.
 * Across processes sharing the file, BEGIN IMMEDIATE plus busy_timeout serialise writers.
 */
export class SqliteStore implements Store {
  readonly kind = "sqlite";
  private readonly db: BetterSqlite3.Database;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  private queue: Promise<unknown> = Promise.resolve();
  private closed = false;
  // Marks async work running inside one of this store's transactions, so a nested
  // tx() fails at once instead of waiting forever behind its own parent in the queue.
  private readonly inTx = new AsyncLocalStorage<true>();

  constructor(opts: SqliteStoreOptions) {
    try {
      this.db = new Database(opts.path);
    } catch (e) {
      throw new MayflyError("config.invalid", `cannot open SQLite database ${opts.path}: ${String(e)}`, {
        cause: e,
        field: "store.url",
      });
    }
    try {
      this.db.pragma("journal_mode = WAL");
      this.db.pragma(`synchronous = ${opts.durability === "normal" ? "NORMAL" : "FULL"}`);
      this.db.pragma("foreign_keys = ON");
      this.db.pragma(`busy_timeout = ${Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000))}`);
    } catch (e) {
      this.db.close();
      throw mapSqliteError(e, "open");
    }
  }

  migrate(): Promise<void> {
    return this.enqueue(async () => applyMigrations(this.db, SQLITE_MIGRATIONS));
  }

  tx<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (this.inTx.getStore()) {
      return Promise.reject(new MayflyError("internal.error", "nested store transactions are not supported"));
    }
    return this.enqueue(() => this.runTx(fn));
  }

  close(): Promise<void> {
    return this.enqueue(async () => {
      this.closed = true;
      this.statements.clear();
      this.db.close();
    });
  }

  /** Runs `job` after every job queued before it, whether those succeeded or failed. */
  private enqueue<T>(job: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closed) throw new MayflyError("internal.error", "the store is closed");
      return job();
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async runTx<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    try {
      this.db.exec("BEGIN IMMEDIATE");
    } catch (e) {
      throw mapSqliteError(e, "begin");
    }
    const tx = new SqliteTx((sql) => this.prepare(sql));
    try {
      const result = await this.inTx.run(true, () => fn(tx));
      tx.end();
      this.db.exec("COMMIT");
      return result;
    } catch (e) {
      tx.end();
      // A failed statement may already have rolled the transaction back (e.g. SQLITE_FULL).
      if (this.db.inTransaction) this.db.exec("ROLLBACK");
      throw mapSqliteError(e, "commit");
    }
  }

  private prepare(sql: string): BetterSqlite3.Statement {
    let s = this.statements.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }
}
