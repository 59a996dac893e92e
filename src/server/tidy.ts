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
   * Rows per transaction (default 500): small, so issuance never waits long behind the write
   * lock (a row costs ~0.1 ms to delete with its four index entries).
   */
  batch?: number;
  /** Batches per run (default 200, so 100,000 rows a minute); what is left waits for the next run. */
  maxBatches?: number;
}

/**
 * One run of the retention job: deletes certificate rows whose notAfter is older than the
 * retention, a bounded batch per transaction, yielding between batches. By then the
 * challenge nonce a row carries has long expired and is refused by its MAC'd expiry, so
 * the row has nothing left to guard. Returns how many certificate rows were deleted.
 */
export async function tidyOnce(o: TidyOptions): Promise<number> {
  const batch = o.batch ?? 500;
  const now = o.clock.now();
  const before = now - o.certificateRetention;
  let total = 0;
  for (let i = 0; i < (o.maxBatches ?? 200); i++) {
    const n = await o.store.tx((tx) => tx.deleteCertificatesExpiredBefore(before, batch));
    total += n;
    if (n < batch) break;
    await new Promise((r) => setImmediate(r));
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
