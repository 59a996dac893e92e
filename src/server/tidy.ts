import type { Logger } from "pino";
import type { Clock } from "../runtime/clock.js";
import type { Store } from "../store/store.js";

export interface TidyOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  /**
   * store.certificateRetention: rows are kept this long after their notAfter. A row also
   * refuses a second use of its challenge nonce, so the config holds this above the
   * challenge TTL plus clock skew (config/schema.ts, minCertificateRetention).
   */
  certificateRetention: number;
  /**
   * Rows per transaction (default 200): small, so issuance never waits long behind the write
   * lock (a row costs 0.04-0.2 ms to delete with its four index entries, warm to cold).
   */
  batch?: number;
  /** Batches per run (default 500, so 100,000 rows a minute); what is left waits for the next run. */
  maxBatches?: number;
  /**
   * After each full batch the job waits this many times as long as the batch took (default
   * 3), so it holds the write lock at most a quarter of the time while it works through a
   * backlog (a first start with retention, a long outage) and issuance keeps the rest.
   */
  pauseRatio?: number;
  /** Waits `ms` (default: a timer). Injected by tests. */
  sleep?: (ms: number) => Promise<void>;
  /** A monotonic clock in ms for timing batches (default: performance.now). Injected by tests. */
  elapsed?: () => number;
}

const timer = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * One run of the retention job: deletes certificate rows whose notAfter is older than the
 * retention, a bounded batch per transaction, pausing between batches (pauseRatio). By then the
 * challenge nonce a row carries has long expired and is refused by its MAC'd expiry, so
 * the row has nothing left to guard. Returns how many certificate rows were deleted.
 */
export async function tidyOnce(o: TidyOptions): Promise<number> {
  const batch = o.batch ?? 200;
  const pauseRatio = o.pauseRatio ?? 3;
  const sleep = o.sleep ?? timer;
  const elapsed = o.elapsed ?? (() => performance.now());
  const now = o.clock.now();
  const before = now - o.certificateRetention;
  let total = 0;
  for (let i = 0; i < (o.maxBatches ?? 500); i++) {
    const started = elapsed();
    const n = await o.store.tx((tx) => tx.deleteCertificatesExpiredBefore(before, batch));
    total += n;
    if (n < batch) break;
    // The batch's time includes waiting its turn in the write queue and the group's fsync:
    // what issuance was denied while the job held its place.
    await sleep(Math.max(1, (elapsed() - started) * pauseRatio));
  }
  if (total > 0) {
    o.log.info(
      { deleted: total, expiredBefore: new Date(before).toISOString() },
      "expired certificates deleted",
    );
  }
  return total;
}

/** Runs tidyOnce every `intervalMs` (unref'd); returns the stop function. */
export function startTidy(o: TidyOptions & { intervalMs?: number }): () => void {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    tidyOnce(o)
      .catch((err) => o.log.warn({ err }, "tidy failed"))
      .finally(() => {
        running = false;
      });
  }, o.intervalMs ?? 60_000);
  timer.unref();
  return () => clearInterval(timer);
}
