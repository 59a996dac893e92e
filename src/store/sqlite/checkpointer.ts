import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";

/**
 * WAL checkpoints off the event loop. SQLite's automatic checkpoint runs inside the
 * COMMIT that crosses wal_autocheckpoint pages: it copies the WAL into the database file
 * and fsyncs it, on the connection's thread, so the whole process (TLS, signing, every
 * other request) stalls for it. The serving connection turns that off
 * (wal_autocheckpoint = 0) and this worker thread, with its own connection, checkpoints
 * instead:
 *
 * - every `intervalMs` in which this process committed something, a PASSIVE checkpoint:
 *   it takes no lock a writer needs, so commits go on meanwhile. Once it has caught up,
 *   the next writer starts the WAL again from its beginning (and cuts the file back to
 *   journal_size_limit).
 * - Under sustained writes a PASSIVE checkpoint rarely catches up (frames arrive while it
 *   copies), so the WAL would only grow. When it holds more than `restartBytes`, a RESTART
 *   checkpoint: it waits (its own busy_timeout, in this thread) for the write lock, copies
 *   what is left, and makes the next writer start the WAL over. Writers wait for it on
 *   BEGIN IMMEDIATE, which retries from the event loop (SqliteStore.beginImmediate): the
 *   process keeps serving.
 *
 * Several processes on one file (mayfly serve --workers N) each run one; a checkpoint
 * that finds another one running, or a lock taken, answers SQLITE_BUSY, which is harmless
 * (the other one is doing the work, or the next tick will). Durability is untouched: a
 * checkpoint only copies committed frames and fsyncs the database file before the WAL is
 * reused, as SQLite's own does; the store still fdatasyncs the WAL after each commit.
 *
 * The worker is plain JavaScript evaluated from a string, so it runs the same under tsx,
 * vitest and the compiled build; it loads better-sqlite3 by the path this module resolves.
 * It sleeps in Atomics.wait on a shared counter the store bumps once per committed group,
 * so an idle store costs a wake-up per interval and nothing else.
 */

/** Slots of the shared Int32Array. */
const COMMITS = 0;
const STOP = 1;
/** Set while the worker waits for the write lock to RESTART; the store's writers hold back. */
const WANT = 2;

const WORKER_SOURCE = `
"use strict";
const { workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const ctl = new Int32Array(workerData.ctl);
const db = new Database(workerData.path);
try {
  db.pragma("wal_autocheckpoint = 0");
  db.pragma("synchronous = NORMAL");
  db.pragma("journal_size_limit = " + workerData.journalSizeLimit);
  db.pragma("busy_timeout = " + workerData.restartBusyMs);
  const passive = db.prepare("PRAGMA wal_checkpoint(PASSIVE)");
  const restart = db.prepare("PRAGMA wal_checkpoint(RESTART)");
  const pageSize = db.pragma("page_size", { simple: true });
  const restartFrames = Math.max(1, Math.floor(workerData.restartBytes / pageSize));
  let seen = Atomics.load(ctl, ${COMMITS});
  // After a RESTART that could not finish (a reader held an old snapshot, another
  // process held the lock), the next ones wait this many ticks.
  let restartPause = 0;
  const run = (stmt) => {
    try {
      return stmt.get();
    } catch (e) {
      // SQLITE_BUSY(_*) / SQLITE_LOCKED: another process is checkpointing or writing.
      if (typeof e.code === "string" && (e.code.startsWith("SQLITE_BUSY") || e.code.startsWith("SQLITE_LOCKED"))) return null;
      throw e;
    }
  };
  for (;;) {
    Atomics.wait(ctl, ${STOP}, 0, workerData.intervalMs);
    if (Atomics.load(ctl, ${STOP}) !== 0) break;
    const now = Atomics.load(ctl, ${COMMITS});
    if (now === seen) continue;
    seen = now;
    const r = run(passive);
    if (restartPause > 0) restartPause--;
    else if (r && r.log > restartFrames) {
      Atomics.store(ctl, ${WANT}, 1);
      let done;
      try {
        done = run(restart);
      } finally {
        Atomics.store(ctl, ${WANT}, 0);
      }
      if (!done || done.busy !== 0) restartPause = 10;
    }
  }
} finally {
  db.close();
}
`;

export interface CheckpointerOptions {
  path: string;
  intervalMs: number;
  restartBytes: number;
  journalSizeLimit: number;
  /** How long a RESTART checkpoint waits for the write lock and for readers, in the worker. */
  restartBusyMs: number;
  /** The worker stopped on its own (it could not open the file, or a checkpoint threw). */
  onFailure: (err: Error) => void;
}

export class Checkpointer {
  private readonly ctl = new Int32Array(new SharedArrayBuffer(12));
  private readonly worker: Worker;
  private readonly exited: Promise<void>;
  private stopping = false;

  constructor(opts: CheckpointerOptions) {
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve("better-sqlite3"),
        path: opts.path,
        ctl: this.ctl.buffer,
        intervalMs: opts.intervalMs,
        restartBytes: opts.restartBytes,
        journalSizeLimit: opts.journalSizeLimit,
        restartBusyMs: opts.restartBusyMs,
      },
      // Checkpoints need no inherited flags (--import tsx, --inspect ...).
      execArgv: [],
    });
    // A checkpointer must never keep the process alive, nor take it down.
    this.worker.unref();
    let failure: Error | null = null;
    this.worker.on("error", (e) => {
      failure = e;
    });
    this.exited = new Promise((resolve) => {
      this.worker.once("exit", (code) => {
        if (!this.stopping)
          opts.onFailure(failure ?? new Error(`checkpoint worker exited with code ${code}`));
        resolve();
      });
    });
  }

  /** Called once per committed group that wrote: the worker checkpoints only after writes. */
  committed(): void {
    Atomics.add(this.ctl, COMMITS, 1);
  }

  /** The worker is waiting for the write lock to RESTART the WAL. */
  wantsWriteLock(): boolean {
    return Atomics.load(this.ctl, WANT) !== 0;
  }

  /** Stops the worker after the checkpoint it may be running, and waits for it to close its connection. */
  async close(): Promise<void> {
    this.stopping = true;
    Atomics.store(this.ctl, STOP, 1);
    Atomics.store(this.ctl, WANT, 0);
    Atomics.notify(this.ctl, STOP);
    // Unref'd while it runs; waited for here, so a process whose last work is close()
    // (a CLI command) does not exit with this wait unsettled (exit code 13).
    this.worker.ref();
    await this.exited;
  }
}
