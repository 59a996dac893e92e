import { AsyncLocalStorage } from "node:async_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { MayflyError } from "../../errors/index.js";
import type { Store, StoreTx } from "../store.js";
import type { IssuanceFacts } from "../types.js";
import { mapPgError } from "./errors.js";
import { applyPgMigrations } from "./migrate.js";
import { PG_MIGRATIONS } from "./migrations/index.js";
import { type AuditLockMode, PostgresTx } from "./postgres-tx.js";

export interface PostgresStoreOptions {
  /**
   * postgres://user@host:port/database?... as libpq reads it. Keep the password out of
   * it: pg reads PGPASSWORD and ~/.pgpass (or PGPASSFILE) like libpq does.
   */
  connectionString: string;
  /** Connections per replica. Default 10. */
  poolSize?: number;
  /**
   * How often tx() runs a callback whose transaction failed with a deadlock or a
   * serialization failure (nothing committed) before giving up with store.conflict.
   * Default 8.
   */
  maxAttempts?: number;
  /**
   * How an audit append claims the chain head. "row" (default): SELECT ... FOR UPDATE
   * of the one row of audit_head; portable to PostgreSQL-compatible distributed
   * databases. "advisory": pg_advisory_xact_lock, PostgreSQL only. "optimistic": no
   * lock; two appends that read the same head collide on the seq primary key and the
   * loser's transaction runs again. The last two exist to measure the first
   * (scripts/bench-store.ts); README "PostgreSQL" has the figures.
   */
  auditLock?: AuditLockMode;
  /** "full" (default): synchronous_commit on. "normal": off (the last commits may be lost if the server crashes). */
  durability?: "full" | "normal";
  /** How long to wait for a connection (pool or server) before failing. Default 10000 ms. */
  connectTimeoutMs?: number;
}

// Rows in the shape better-sqlite3 returns them (BIGINT as a number, BOOLEAN as 0/1,
// BYTEA as a Buffer), so both backends share the row mappers in sqlite/rows.ts. Epoch
// milliseconds and counts fit in 2^53; anything larger is refused, not rounded.
const INT8 = 20;
const BOOL = 16;
function parseInt8(text: string): number {
  const n = Number(text);
  if (!Number.isSafeInteger(n)) throw new MayflyError("internal.error", `BIGINT ${text} exceeds 2^53`);
  return n;
}
const TYPES = {
  getTypeParser(oid: number, format?: "text" | "binary") {
    if (oid === INT8) return parseInt8;
    if (oid === BOOL) return (text: string) => (text === "t" ? 1 : 0);
    return pg.types.getTypeParser(oid, format);
  },
} as pg.CustomTypesConfig;

/**
 * The Store for several replicas over one PostgreSQL database: a pg Pool, one pooled
 * connection per transaction, and no state in memory that another replica needs.
 *
 * Isolation: READ COMMITTED plus explicit row locks, not SERIALIZABLE. Every allow and
 * deny appends to one hash chain, so every writing transaction meets at the chain head;
 * under SERIALIZABLE (or REPEATABLE READ) the transaction that waited for the head would
 * find it moved since its snapshot and fail, and a busy CA would spend its time
 * retrying. Under READ COMMITTED each statement sees what was committed before it began,
 * so "lock the head, then read it" is exact, and the invariants hold by construction:
 * conditional UPDATEs pick the one winner (activations, transfers), a unique constraint
 * refuses a second certificate carrying a challenge's nonce (a second redemption) and a
 * primary key a second serial, the liveness rows an issuance reads are locked (see
 * PostgresTx), and the head lock orders the chain.
 * Deadlocks between those locks are possible (a leaver locking the owner while an
 * issuance holds the agent) and are resolved by running the callback again.
 */
export class PostgresStore implements Store {
  readonly kind = "postgres";
  private readonly pool: pg.Pool;
  private readonly maxAttempts: number;
  private readonly auditLock: AuditLockMode;
  private closed = false;
  // As in SqliteStore: a nested tx() would wait for a connection its parent may hold.
  private readonly inTx = new AsyncLocalStorage<true>();

  constructor(opts: PostgresStoreOptions) {
    this.maxAttempts = Math.max(1, Math.floor(opts.maxAttempts ?? 8));
    this.auditLock = opts.auditLock ?? "row";
    this.pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: Math.max(1, Math.floor(opts.poolSize ?? 10)),
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 10_000,
      application_name: "mayfly",
      types: TYPES,
    });
    // An idle connection dropped by the server (restart, failover) must not crash the
    // process; the pool discards it and the next checkout opens a new one.
    this.pool.on("error", () => undefined);
    if (opts.durability === "normal") {
      this.pool.on("connect", (client) => {
        client.query("SET synchronous_commit TO off").catch(() => undefined);
      });
    }
  }

  migrate(): Promise<void> {
    if (this.closed) return Promise.reject(new MayflyError("internal.error", "the store is closed"));
    return applyPgMigrations(this.pool, PG_MIGRATIONS);
  }

  async tx<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (this.inTx.getStore())
      throw new MayflyError("internal.error", "nested store transactions are not supported");
    if (this.closed) throw new MayflyError("internal.error", "the store is closed");
    for (let attempt = 1; ; attempt++) {
      const outcome = await this.attempt(fn);
      if (outcome.ok) return outcome.value;
      if (!outcome.retry || attempt >= this.maxAttempts) throw outcome.error;
      // Deadlock victims and seq losers go again after a short, growing pause; the
      // spread keeps callers that collided once from colliding in lockstep.
      await sleep(Math.min(200, 2 ** attempt) + ((attempt * 7 + this.spread++) % 11));
    }
  }
  private spread = 0;

  /**
   * A REPEATABLE READ READ ONLY transaction: one snapshot for every statement, no row
   * locks (PostgresTx drops them), so it waits for no writer and no writer waits for it;
   * PostgreSQL refuses any write in it (25006, mapped to internal.error). A read-only
   * transaction under REPEATABLE READ never fails serialisation, so there is no retry.
   */
  async read<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (this.inTx.getStore())
      throw new MayflyError("internal.error", "nested store transactions are not supported");
    if (this.closed) throw new MayflyError("internal.error", "the store is closed");
    const outcome = await this.attempt(fn, true);
    if (outcome.ok) return outcome.value;
    throw outcome.error;
  }

  /** No cache here (migration 0010 says why): the four locked-free reads of read(). */
  readIssuanceFacts(agentId: string): Promise<IssuanceFacts | null> {
    return this.read((tx) => tx.getIssuanceFacts(agentId));
  }

  private async attempt<T>(
    fn: (tx: StoreTx) => Promise<T>,
    readOnly = false,
  ): Promise<{ ok: true; value: T } | { ok: false; retry: boolean; error: unknown }> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (e) {
      return { ok: false, retry: false, error: mapPgError(e, "connect") };
    }
    const tx = new PostgresTx(client, this.auditLock, readOnly);
    let broken: Error | undefined;
    const rollback = async () => {
      try {
        await client.query("ROLLBACK");
      } catch (e) {
        // The connection is gone or unusable; the server rolls back what it had.
        broken = e instanceof Error ? e : new Error(String(e));
      }
    };
    try {
      try {
        await client.query(
          readOnly
            ? "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
            : "BEGIN ISOLATION LEVEL READ COMMITTED",
        );
      } catch (e) {
        broken = e instanceof Error ? e : new Error(String(e));
        return { ok: false, retry: false, error: mapPgError(e, "begin") };
      }
      let value: T;
      try {
        value = await this.inTx.run(true, () => fn(tx));
      } catch (e) {
        tx.end();
        await rollback();
        return { ok: false, retry: tx.retryable, error: e }; // the callback's own error, as thrown
      }
      tx.end();
      if (tx.failure !== null) {
        // The callback swallowed a store error and returned: PostgreSQL has aborted the
        // transaction and would answer COMMIT with a silent ROLLBACK. Never report that
        // as success.
        await rollback();
        return { ok: false, retry: tx.retryable, error: tx.failure };
      }
      try {
        const done = await client.query("COMMIT");
        if (done.command !== "COMMIT") throw new Error(`COMMIT answered ${done.command}`);
      } catch (e) {
        broken = e instanceof Error ? e : new Error(String(e));
        return { ok: false, retry: false, error: mapPgError(e, "commit") };
      }
      return { ok: true, value };
    } finally {
      client.release(broken);
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.end();
  }
}
