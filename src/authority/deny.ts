import { appendAudit } from "../audit/index.js";
import { type ErrorCode, isMayflyError, MayflyError } from "../errors/index.js";
import type { Clock } from "../runtime/clock.js";
import type { Store } from "../store/store.js";

/** Errors whose denial is in the audit log already (see wasRecorded). */
const recorded = new WeakSet<object>();

/**
 * Marks an error as recorded: its deny event is written (recordDenial, or a deny appended
 * in the failing transaction itself), so the server's problem answer must not write a
 * second one (server/refusals.ts).
 */
export function markRecorded(err: MayflyError): MayflyError {
  recorded.add(err);
  return err;
}

/** Whether `err` is a denial already in the audit log (markRecorded). */
export function wasRecorded(err: unknown): boolean {
  return typeof err === "object" && err !== null && recorded.has(err);
}

/**
 * Records a denial: one audit event in its own transaction, nothing else. Called
 * after the failing transaction rolled back, so the deny is logged as surely as an
 * allow and the failed attempt leaves no other trace.
 */
export async function recordDenial(
  store: Store,
  clock: Clock,
  err: unknown,
  ev: { type: string; actor: string | null; subject: string | null; data?: Record<string, unknown> },
): Promise<MayflyError> {
  const me = isMayflyError(err)
    ? err
    : new MayflyError("internal.error", "an internal error occurred", { cause: err });
  const code: ErrorCode = me.code;
  await store.tx((tx) =>
    appendAudit(tx, clock, {
      type: ev.type,
      decision: "deny",
      code,
      actor: ev.actor,
      subject: ev.subject,
      data: { ...(ev.data ?? {}), detail: me.detail, ...(me.field ? { field: me.field } : {}) },
    }),
  );
  return markRecorded(me);
}
