import type { Logger } from "pino";
import type { Clock } from "../runtime/clock.js";
import type { Store } from "../store/store.js";

export interface TidyOptions {
  store: Store;
  clock: Clock;
  log: Logger;
  /** store.certificateRetention: rows are kept this long after their notAfter. */
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
 * How long a redeemed challenge's row outlives the nonce's expiry. The row is what refuses
 * a second redemption, and a replica refuses the nonce itself only once its own clock
 * passes the expiry: the margin covers clocks that disagree by up to this much.
 */
export const CHALLENGE_ROW_GRACE = 5 * 60_000;

/**
 * One run of the retention job: deletes certificate rows whose notAfter is older than the
 * retention, a bounded batch per transaction, yielding between batches. Rows of redeemed
 * challenges go too once their nonce has expired (plus CHALLENGE_ROW_GRACE): an expired
 * nonce is refused by its MAC'd expiry, so the row has nothing left to guard. Returns how
 * many certificate rows were deleted.
 */
export async function tidyOnce(o: TidyOptions): Promise<number> {
  const batch = o.batch ?? 500;
  const now = o.clock.now();
  const challenges = await o.store.tx((tx) => tx.deleteExpiredChallenges(now - CHALLENGE_ROW_GRACE));
  if (challenges > 0) o.log.debug({ deleted: challenges }, "expired challenges deleted");
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
