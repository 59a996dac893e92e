import type { AsyncLocalStorage } from "node:async_hooks";
import type BetterSqlite3 from "better-sqlite3";
import Database from "better-sqlite3";
import { MayflyError } from "../../errors/index.js";
import type { StoreTx } from "../store.js";
import type { IssuanceFacts } from "../types.js";
import { mapSqliteError } from "./errors.js";
import { FACTS_VERSION_SQL, type FactsCache } from "./facts-cache.js";
import { SqliteTx } from "./sqlite-tx.js";
import type { Prepare } from "./tx-base.js";

/** A Prepare that refuses any statement that could write (better-sqlite3's sqlite3_stmt_readonly). */
export function refusingWrites(prepare: Prepare): Prepare {
  return (sql) => {
    const s = prepare(sql);
    if (!s.readonly) {
      throw new MayflyError("internal.error", "store.read(): a read-only transaction cannot write; use tx()");
    }
    return s;
  };
}

/**
 * store.read() for a file database: a second, read-only connection, opened on first use,
 * whose BEGIN ... COMMIT holds one WAL snapshot, so a read never waits for the write
 * queue or another process's write lock. Reads run one at a time on it (their own queue),
 * so two never interleave on the connection.
 */
export class SqliteReader {
  #db: BetterSqlite3.Database | null = null;
  readonly #statements = new Map<string, BetterSqlite3.Statement>();
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;
  readonly #prepare: Prepare = refusingWrites((sql) => this.#statement(sql));

  constructor(
    private readonly path: string,
    private readonly busyTimeoutMs: number,
    /** The store's marker of code running inside one of its transactions (nesting is refused). */
    private readonly inTx: AsyncLocalStorage<true>,
    /** The store's issuance-facts cache, shared with its writer (facts-cache.ts says why that is sound). */
    private readonly facts: FactsCache | null = null,
  ) {}

  run<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    const run = this.#tail.then(() => this.#run(fn));
    this.#tail = run.catch(() => undefined);
    return run;
  }

  /**
   * What run((tx) => tx.getIssuanceFacts(agentId)) returns. On a cache hit that is one
   * statement outside any transaction: the facts_version it reads is one atomic view, and
   * the entry read under that value is exactly the rows the database holds under it
   * (facts-cache.ts), so no BEGIN/COMMIT is needed around it (~20 µs of each of the two
   * such reads per issuance). A miss reads the rows in run()'s transaction. Queued like
   * run(), so it never lands inside another read's transaction.
   */
  issuanceFacts(agentId: string): Promise<IssuanceFacts | null> {
    const run = this.#tail.then(() => {
      if (this.#closed) throw new MayflyError("internal.error", "the store is closed");
      const hit = this.#cachedFacts(agentId);
      return hit ?? this.#run((tx) => tx.getIssuanceFacts(agentId));
    });
    this.#tail = run.catch(() => undefined);
    return run;
  }

  #cachedFacts(agentId: string): IssuanceFacts | undefined {
    if (!this.facts) return undefined;
    this.#open();
    let v: unknown;
    try {
      // Raw mode, as SqliteTx's reads of the same cached statement set it (tx-base.ts).
      v = (this.#statement(FACTS_VERSION_SQL).raw(true).get() as unknown[] | undefined)?.[0];
    } catch (e) {
      throw mapSqliteError(e, "getIssuanceFacts");
    }
    // No row: the transaction path reports it (internal.error) with its wording.
    return typeof v === "string" ? this.facts.get(agentId, v) : undefined;
  }

  /** Reads already running finish; those queued behind them find the store closed. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#tail;
    this.#db?.close();
    this.#db = null;
    this.#statements.clear();
  }

  #statement(sql: string): BetterSqlite3.Statement {
    let s = this.#statements.get(sql);
    if (!s) {
      s = this.#db!.prepare(sql);
      this.#statements.set(sql, s);
    }
    return s;
  }

  #open(): BetterSqlite3.Database {
    if (this.#db) return this.#db;
    let db: BetterSqlite3.Database | null = null;
    try {
      db = new Database(this.path, { readonly: true });
      db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
    } catch (e) {
      db?.close();
      throw mapSqliteError(e, "read");
    }
    this.#db = db;
    return db;
  }

  async #run<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (this.#closed) throw new MayflyError("internal.error", "the store is closed");
    const db = this.#open();
    const control = (sql: "BEGIN" | "COMMIT" | "ROLLBACK") => this.#statement(sql).run();
    try {
      control("BEGIN");
    } catch (e) {
      throw mapSqliteError(e, "begin");
    }
    const tx = new SqliteTx(this.#prepare, this.facts);
    let value: T;
    try {
      value = await this.inTx.run(true, () => fn(tx));
    } catch (e) {
      tx.end();
      if (db.inTransaction) control("ROLLBACK");
      throw e;
    }
    tx.end();
    // Nothing was written: COMMIT just lets the snapshot go.
    try {
      if (db.inTransaction) control("COMMIT");
    } catch (e) {
      if (db.inTransaction) control("ROLLBACK");
      throw mapSqliteError(e, "commit");
    }
    return value;
  }
}
