import { AsyncLocalStorage } from "node:async_hooks";
import { closeSync, existsSync, fdatasync, fsyncSync, openSync } from "node:fs";
import { dirname } from "node:path";
import type BetterSqlite3 from "better-sqlite3";
import Database from "better-sqlite3";
import { MayflyError } from "../../errors/index.js";
import type { Store, StoreTx } from "../store.js";
import type { IssuanceFacts } from "../types.js";
import { Checkpointer } from "./checkpointer.js";
import { mapSqliteError } from "./errors.js";
import { FactsCache } from "./facts-cache.js";
import { applyMigrations } from "./migrate.js";
import { SQLITE_MIGRATIONS } from "./migrations/index.js";
import { refusingWrites, SqliteReader } from "./sqlite-reader.js";
import { SqliteTx } from "./sqlite-tx.js";
import type { Prepare } from "./tx-base.js";

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
  /** fdatasync(2) of the WAL for durability "full"; tests replace it to observe or fail it. */
  syncWal?: (fd: number, done: (err: Error | null) => void) => void;
  /** How often the checkpoint worker looks for new commits (checkpointer.ts). Default CHECKPOINT_INTERVAL_MS. */
  checkpointIntervalMs?: number;
  /** WAL content past which the checkpoint worker forces a RESTART checkpoint. Default WAL_RESTART_BYTES. */
  walRestartBytes?: number;
  /**
   * Agents whose issuance facts this process keeps between issuances (facts-cache.ts).
   * Default 16,384; 0 reads the four rows every time.
   */
  factsCacheSize?: number;
}

/** Bytes a reset WAL is truncated to (PRAGMA journal_size_limit). */
export const WAL_SIZE_LIMIT = 64 * 1024 * 1024;

/**
 * WAL content (frames not yet reused) past which the checkpoint worker makes writers wait
 * for a RESTART checkpoint, so the WAL stays bounded under sustained writes.
 */
export const WAL_RESTART_BYTES = 32 * 1024 * 1024;

/**
 * How often the checkpoint worker runs a PASSIVE checkpoint while commits arrive. Each one
 * copies every page written since the last once, so the pages every issuance rewrites
 * (table and index tails, agent rows, upper index levels) are copied once per interval:
 * under sustained issuance, 250 ms instead of 100 ms copies ~1.0 instead of ~1.6 pages per
 * issuance and costs the worker ~40% less CPU, for a WAL that reaches walRestartBytes
 * plus what 250 ms of writes add before the RESTART.
 */
export const CHECKPOINT_INTERVAL_MS = 250;

/** At most this many transactions share one BEGIN ... COMMIT (one fsync). */
export const GROUP_COMMIT_MAX = 128;

type Job =
  | {
      kind: "tx";
      fn: (tx: StoreTx) => Promise<unknown>;
      /** read() on a database with no second connection (":memory:"): writes are refused. */
      readOnly: boolean;
      resolve: (v: unknown) => void;
      reject: (e: unknown) => void;
    }
  | { kind: "job"; fn: () => Promise<unknown>; resolve: (v: unknown) => void; reject: (e: unknown) => void };
type TxJob = Extract<Job, { kind: "tx" }>;

/**
 * The embedded Store over one better-sqlite3 connection. better-sqlite3 is synchronous,
 * but tx() callbacks are async (they may await a signer between reads and writes), so
 * transactions are queued and run one at a time on the one connection. Across processes
 * sharing the file, BEGIN IMMEDIATE plus busy_timeout serialise writers.
 *
 * Group commit: the transactions waiting in the queue when the connection frees up run
 * together inside one BEGIN IMMEDIATE ... COMMIT, each in its own SAVEPOINT, so under
 * load many transactions share one fsync. Each keeps its own all-or-nothing outcome (a
 * callback that throws rolls back to its savepoint and rejects alone), each sees the
 * writes of those before it exactly as if they had run one after another, and no tx()
 * resolves before its COMMIT is durable (durability "full": an fsync of the WAL that
 * began after the COMMIT has finished, see syncCommitted): "recorded before returned"
 * holds per transaction. If the shared COMMIT or its fsync fails, every transaction of
 * the group that had succeeded rejects with that error. While an fsync runs, the queue
 * waits for it to end before the next group starts (see drain): under load, one group
 * per fsync.
 *
 * WAL checkpoints run in a worker thread with its own connection (checkpointer.ts), not
 * inside COMMIT. read() runs on a second, read-only connection with its own queue: WAL
 * readers see the last committed snapshot and neither wait for writers nor block them.
 */
export class SqliteStore implements Store {
  readonly kind = "sqlite";
  private readonly db: BetterSqlite3.Database;
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  private readonly pending: Job[] = [];
  private running = false;
  private closed = false;
  private readonly path: string;
  private readonly durability: SqliteDurability;
  private readonly syncWal: (fd: number, done: (err: Error | null) => void) => void;
  private walFd: number | null = null;
  private busyTimeoutMs = 5000;
  /** The serving connection's busy_timeout right now (see beginImmediate). */
  private busyTimeoutNow = 5000;
  private walMode = false;
  private checkpointer: Checkpointer | null = null;
  /** Commits waiting for the next WAL fsync, and whether one is running. */
  private syncWaiters: { resolve: () => void; reject: (e: unknown) => void }[] = [];
  private syncing = false;
  /** Told when the running fsync ends, however it ends (see drain). */
  private syncEndWaiters: (() => void)[] = [];
  // Marks async work running inside one of this store's transactions, so a nested
  // tx() fails at once instead of waiting forever behind its own parent in the queue.
  private readonly inTx = new AsyncLocalStorage<true>();
  /**
   * Whether the running group has executed a statement that can write. A group that has
   * not (the read-only first transaction of an issuance) wrote no WAL frame and needs no
   * fsync. Statements that could write but changed nothing (an UPDATE that matched no
   * row) count too: an fsync too many, never one too few.
   */
  private groupWrote = false;
  private readonly txPrepare: Prepare = (sql) => {
    const s = this.prepare(sql);
    if (!s.readonly) this.groupWrote = true;
    return s;
  };
  private readonly readOnlyPrepare: Prepare = refusingWrites((sql) => this.prepare(sql));
  // read() on a file database: a second, read-only connection (sqlite-reader.ts), opened
  // after the constructor knows the busy timeout.
  private reader: SqliteReader | null = null;
  private readonly facts: FactsCache | null;

  constructor(opts: SqliteStoreOptions) {
    try {
      this.db = new Database(opts.path);
    } catch (e) {
      throw new MayflyError("config.invalid", `cannot open SQLite database ${opts.path}: ${String(e)}`, {
        cause: e,
        field: "store.url",
      });
    }
    this.path = opts.path;
    const factsSize = opts.factsCacheSize ?? 16_384;
    this.facts = factsSize > 0 ? new FactsCache(factsSize) : null;
    this.durability = opts.durability ?? "full";
    this.syncWal = opts.syncWal ?? ((fd, done) => fdatasync(fd, done));
    try {
      const mode = this.db.pragma("journal_mode = WAL", { simple: true });
      this.walMode = mode === "wal";
      // "full" in WAL mode is NORMAL plus our own fdatasync of the WAL after each group
      // commit, off the event loop (see syncCommitted): SQLite's FULL would block the
      // process for every fsync. Without a WAL (":memory:"), SQLite's own levels.
      const own = this.walMode || this.durability === "normal";
      this.db.pragma(`synchronous = ${own ? "NORMAL" : "FULL"}`);
      this.db.pragma("foreign_keys = ON");
      // Each transaction of a group runs in a SAVEPOINT, whose sub-journal (the pages'
      // contents before it) SQLite keeps in memory only up to 64 KiB by default, then in
      // a temporary file that lives until COMMIT: a pwrite per journaled page, and a file
      // created and unlinked per group. In memory it stays (one transaction's pages at a
      // time: RELEASE empties it). It only ever serves a rollback inside the running
      // transaction, so it has no part in what survives a crash. A statement's temporary
      // tables (the key list of deleteCertificatesExpiredBefore's IN (SELECT ... LIMIT ?),
      // a tidy batch) are in memory too; every such statement here is bounded.
      this.db.pragma("temp_store = MEMORY");
      // A WAL that a long reader kept from being reset grows; once a checkpoint does reset
      // it, it is cut back to this size instead of keeping its high-water mark on disk.
      this.db.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
      this.busyTimeoutMs = Math.max(0, Math.floor(opts.busyTimeoutMs ?? 5000));
      this.db.pragma(`busy_timeout = ${this.busyTimeoutMs}`);
      this.busyTimeoutNow = this.busyTimeoutMs;
      // Checkpoints are the worker's (checkpointer.ts), not COMMIT's.
      if (this.walMode) this.db.pragma("wal_autocheckpoint = 0");
    } catch (e) {
      this.db.close();
      throw mapSqliteError(e, "open");
    }
    if (this.walMode) {
      this.checkpointer = new Checkpointer({
        path: this.path,
        intervalMs: Math.max(1, opts.checkpointIntervalMs ?? CHECKPOINT_INTERVAL_MS),
        restartBytes: opts.walRestartBytes ?? WAL_RESTART_BYTES,
        journalSizeLimit: WAL_SIZE_LIMIT,
        // Writers wait while a RESTART checkpoint holds the write lock, so it waits for
        // readers only briefly; one that could not finish is tried again later.
        restartBusyMs: Math.min(250, this.busyTimeoutMs),
        onFailure: () => {
          // Without the worker the WAL would grow for ever: SQLite checkpoints in COMMIT again.
          this.checkpointer = null;
          if (!this.closed) this.db.pragma("wal_autocheckpoint = 1000");
        },
      });
    }
  }

  migrate(): Promise<void> {
    return this.enqueue(async () => {
      applyMigrations(this.db, SQLITE_MIGRATIONS);
      await this.syncCommitted();
    });
  }

  tx<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    return this.queueTx(fn, false);
  }

  /**
   * Runs `fn` on the read-only connection, in one deferred transaction: every statement
   * sees the snapshot the first one saw. Queued behind earlier read() calls only (one
   * connection runs one transaction at a time), never behind the write queue or another
   * process's write lock. ":memory:" has no second connection: the read goes through the
   * write queue, with writes refused the same way.
   */
  read<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T> {
    if (!this.walMode) return this.queueTx(fn, true);
    try {
      return this.readConnection().run(fn);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * read()'s answer for the issuance facts. On a file database with the facts cache, a
   * hit costs one statement on the read connection and no BEGIN/COMMIT
   * (SqliteReader.issuanceFacts); anything else is read().
   */
  readIssuanceFacts(agentId: string): Promise<IssuanceFacts | null> {
    if (!this.walMode || !this.facts) return this.read((tx) => tx.getIssuanceFacts(agentId));
    try {
      return this.readConnection().issuanceFacts(agentId);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** The read-only connection (opened on first use), unless the call is nested or the store closed. */
  private readConnection(): SqliteReader {
    if (this.inTx.getStore())
      throw new MayflyError("internal.error", "nested store transactions are not supported");
    if (this.closed) throw new MayflyError("internal.error", "the store is closed");
    this.reader ??= new SqliteReader(this.path, this.busyTimeoutMs, this.inTx, this.facts);
    return this.reader;
  }

  private queueTx<T>(fn: (tx: StoreTx) => Promise<T>, readOnly: boolean): Promise<T> {
    if (this.inTx.getStore()) {
      return Promise.reject(new MayflyError("internal.error", "nested store transactions are not supported"));
    }
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ kind: "tx", fn, readOnly, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  close(): Promise<void> {
    return this.enqueue(async () => {
      // Commits still waiting for their fsync get it before the file is let go.
      while (this.syncing || this.syncWaiters.length > 0) await this.syncCommitted().catch(() => undefined);
      this.closed = true;
      await this.reader?.close();
      await this.checkpointer?.close();
      this.checkpointer = null;
      this.statements.clear();
      this.db.close();
      if (this.walFd !== null) closeSync(this.walFd);
      this.walFd = null;
    });
  }

  /** Runs `job` alone, after everything queued before it, whether that succeeded or failed. */
  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ kind: "job", fn, resolve: resolve as (v: unknown) => void, reject });
      this.pump();
    });
  }

  private pump(): void {
    if (this.running) return;
    this.running = true;
    void this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        const first = this.pending[0]!;
        if (this.closed) {
          this.pending.shift();
          first.reject(new MayflyError("internal.error", "the store is closed"));
          continue;
        }
        if (first.kind === "job") {
          this.pending.shift();
          try {
            // Jobs (migrate, close) may meet another process's locks outside BEGIN IMMEDIATE.
            this.setBusyTimeout(this.busyTimeoutMs);
            first.resolve(await first.fn());
          } catch (e) {
            first.reject(e);
          }
          continue;
        }
        // While an fsync of the WAL runs, a transaction committed now could not resolve
        // before it ends anyway: its callers wait for the next fsync, which starts only
        // then. So the queue waits for that end too and then runs as one group, instead of
        // as several small ones each paying BEGIN ... COMMIT, the pages every transaction
        // dirties (table and index tails, the agent rows) and the read connection's cache
        // reset. Under load that is several times fewer commits; an idle store (no fsync
        // running) starts at once, as does everything with durability "normal".
        if (this.syncing) await new Promise<void>((resolve) => this.syncEndWaiters.push(resolve));
        let n = 1;
        while (n < this.pending.length && n < GROUP_COMMIT_MAX && this.pending[n]!.kind === "tx") n++;
        await this.runGroup(this.pending.splice(0, n) as TxJob[]);
      }
    } finally {
      this.running = false;
    }
  }

  private async runGroup(group: TxJob[]): Promise<void> {
    try {
      await this.beginImmediate();
    } catch (e) {
      const err = mapSqliteError(e, "begin");
      for (const j of group) j.reject(err);
      return;
    }
    this.groupWrote = false;
    const single = group.length === 1;
    const outcomes: ({ ok: true; value: unknown } | { ok: false; error: unknown })[] = [];
    for (let i = 0; i < group.length; i++) {
      const job = group[i]!;
      if (!this.db.inTransaction) {
        // A failed statement rolled the whole transaction back (e.g. SQLITE_FULL): what the
        // group had done is gone, and the rest go back to the head of the queue.
        this.pending.unshift(...group.slice(i));
        break;
      }
      const tx = new SqliteTx(job.readOnly ? this.readOnlyPrepare : this.txPrepare, this.facts);
      try {
        if (!single) this.control("SAVEPOINT g");
        const value = await this.inTx.run(true, () => job.fn(tx));
        tx.end();
        if (!single) this.control("RELEASE g");
        outcomes.push({ ok: true, value });
      } catch (e) {
        tx.end();
        if (!single && this.db.inTransaction) {
          this.control("ROLLBACK TO g");
          this.control("RELEASE g");
        }
        outcomes.push({ ok: false, error: mapSqliteError(e, "commit") });
      }
    }
    let commitError: unknown = null;
    if (this.db.inTransaction) {
      try {
        if (single && !outcomes[0]?.ok) this.control("ROLLBACK");
        else this.control("COMMIT");
      } catch (e) {
        commitError = mapSqliteError(e, "commit");
        if (this.db.inTransaction) this.control("ROLLBACK");
      }
    } else {
      commitError = new MayflyError("internal.error", "the transaction was rolled back by the database");
    }
    // Durable before resolved: the group's callers hear back once an fsync of the WAL that
    // started after this COMMIT has finished. The next group runs meanwhile.
    // A group that wrote nothing (the read-only first transaction of an issuance) needs no fsync.
    const committed = !commitError && this.groupWrote && outcomes.some((o) => o.ok);
    if (committed) this.checkpointer?.committed();
    const durable = committed ? this.syncCommitted() : Promise.resolve();
    durable.then(
      () =>
        outcomes.forEach((o, i) => {
          const job = group[i]!;
          if (!o.ok) job.reject(o.error);
          else if (commitError) job.reject(commitError);
          else job.resolve(o.value);
        }),
      (syncError) =>
        outcomes.forEach((o, i) => {
          const job = group[i]!;
          if (!o.ok) job.reject(o.error);
          else
            job.reject(
              new MayflyError("internal.error", "the commit could not be made durable (fsync failed)", {
                cause: syncError,
              }),
            );
        }),
    );
  }

  /**
   * Durability "full": resolves after an fdatasync of the WAL that began after every commit
   * made so far. WAL frames are appended in order and carry cumulative checksums, so after
   * a power loss the database recovers to a prefix of the commits, and a synced commit is
   * in it (the guarantee synchronous=FULL gives, minus blocking the process per fsync).
   * Commits made while one fsync runs share the next. "normal" resolves at once.
   */
  private syncCommitted(): Promise<void> {
    if (this.durability !== "full" || !this.walMode) return Promise.resolve();
    if (this.walFd === null) {
      const wal = `${this.path}-wal`;
      if (!existsSync(wal)) return Promise.resolve(); // nothing committed through a WAL yet
      this.walFd = openSync(wal, "r");
      // The WAL's directory entry must survive too, once.
      const dir = openSync(dirname(wal), "r");
      try {
        fsyncSync(dir);
      } finally {
        closeSync(dir);
      }
    }
    return new Promise((resolve, reject) => {
      this.syncWaiters.push({ resolve, reject });
      if (!this.syncing) this.startSync();
    });
  }

  private startSync(): void {
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    this.syncing = true;
    this.syncWal(this.walFd!, (err) => {
      this.syncing = false;
      for (const w of waiters) err ? w.reject(err) : w.resolve();
      if (this.syncWaiters.length > 0) this.startSync();
      const ended = this.syncEndWaiters;
      this.syncEndWaiters = [];
      for (const resolve of ended) resolve();
    });
  }

  /**
   * BEGIN IMMEDIATE without blocking the process while another process holds the write
   * lock: SQLite's busy handler would sleep the whole event loop (1, 2, 5, 10 ms ...), so the
   * attempt is made with busy_timeout 0 and retried from the event loop (next turn, then
   * every millisecond) until busyTimeoutMs has passed; the loop serves requests meanwhile.
   *
   * In WAL mode the connection then stays at busy_timeout 0 from one transaction to the
   * next: once BEGIN IMMEDIATE holds the write lock, no statement up to and including
   * COMMIT waits for another lock (a WAL commit takes none, and checkpoints are the
   * worker's), so the two PRAGMAs per transaction bought nothing. Jobs (migrate, close),
   * which can meet locks outside a write transaction, set the configured timeout back
   * (drain). Without a WAL, COMMIT itself takes locks, so the timeout is restored at once.
   *
   * When the checkpoint worker is waiting for the write lock to RESTART the WAL (which
   * would otherwise grow without bound under sustained writes), this process lets it go
   * first instead of racing it for the lock.
   */
  private async beginImmediate(): Promise<void> {
    const deadline = Date.now() + this.busyTimeoutMs;
    while (this.checkpointer?.wantsWriteLock() && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1));
    }
    for (let attempt = 0; ; attempt++) {
      this.setBusyTimeout(0);
      try {
        this.control("BEGIN IMMEDIATE");
        return;
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        const busy = typeof code === "string" && code.startsWith("SQLITE_BUSY");
        if (!busy || Date.now() >= deadline) throw e;
      } finally {
        if (!this.walMode) this.setBusyTimeout(this.busyTimeoutMs);
      }
      await new Promise((r) => (attempt < 4 ? setImmediate(r) : setTimeout(r, 1)));
    }
  }

  private setBusyTimeout(ms: number): void {
    if (this.busyTimeoutNow === ms) return;
    this.prepare(`PRAGMA busy_timeout = ${ms}`).get();
    this.busyTimeoutNow = ms;
  }

  /** A transaction-control statement, prepared once (db.exec would compile it every time). */
  private control(
    sql: "BEGIN IMMEDIATE" | "SAVEPOINT g" | "RELEASE g" | "ROLLBACK TO g" | "ROLLBACK" | "COMMIT",
  ) {
    this.prepare(sql).run();
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
