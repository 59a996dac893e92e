import { isMayflyError, MayflyError } from "../errors/index.js";
import type { Store } from "../store/store.js";
import type { AuditEvent } from "../store/types.js";
import { auditHash, GENESIS_HASH } from "./chain.js";

export type AuditFailureReason =
  /** A row's fields no longer hash to its stored hash: the row was altered or moved to another seq. */
  | "hash_mismatch"
  /** A row does not link to its predecessor: a row before it was rewritten with a recomputed hash. */
  | "prev_mismatch"
  /** A seq is missing: rows were deleted (including the first, if the log starts above 1). */
  | "seq_gap"
  /** A row cannot be read back (data not JSON, hash of the wrong length). */
  | "unreadable"
  /** The log ends before the expected head: rows at the tail were deleted. */
  | "truncated"
  /** The row at the expected head's seq has another hash: history up to it was rewritten. */
  | "head_mismatch";

export type AuditVerifyResult =
  | { ok: true; count: number; headSeq: number; headHash: Buffer }
  | { ok: false; count: number; firstBadSeq: number; reason: AuditFailureReason; detail: string };

export interface AuditVerifyOptions {
  /** Rows per read transaction; each page is a short transaction so writers are not held up. */
  pageSize?: number;
  /**
   * A head known from outside the database, e.g. a signed checkpoint. A hash chain on
   * its own cannot tell "the last rows were deleted" from "nothing happened since":
   * the remaining prefix still verifies. Only an anchor the attacker cannot rewrite
   * detects a truncated tail, so without one a truncation goes unnoticed.
   */
  expectedHead?: { seq: number; hash: Buffer | string };
}

/**
 * Walks the whole log in seq order and recomputes every hash and link. Reports the
 * first event that fails, by seq, and why; events after it are not judged (once the
 * chain is broken, every later link is suspect anyway). `count` is the number of
 * events that verified before the failure.
 */
export async function verifyAuditChain(
  store: Store,
  opts: AuditVerifyOptions = {},
): Promise<AuditVerifyResult> {
  const pageSize = Math.max(1, Math.floor(opts.pageSize ?? 1000));
  const anchor = opts.expectedHead && {
    seq: opts.expectedHead.seq,
    hash:
      typeof opts.expectedHead.hash === "string"
        ? opts.expectedHead.hash.toLowerCase()
        : opts.expectedHead.hash.toString("hex"),
  };
  let count = 0;
  let expectedSeq = 1;
  let prev = GENESIS_HASH;
  const fail = (firstBadSeq: number, reason: AuditFailureReason, detail: string): AuditVerifyResult => ({
    ok: false,
    count,
    firstBadSeq,
    reason,
    detail,
  });

  // A row the store cannot decode fails the whole page it is in. To judge the rows
  // before it first (and so name the first bad seq, not merely a bad one), re-read one
  // row at a time up to the unreadable seq.
  let limit = pageSize;
  let slowUntil = 0;
  for (;;) {
    let page: AuditEvent[];
    try {
      page = await store.tx((tx) => tx.listAuditEvents(expectedSeq, limit));
    } catch (e) {
      const seq = unreadableSeq(e);
      if (seq === null) throw e;
      if (seq === expectedSeq) return fail(seq, "unreadable", (e as MayflyError).detail);
      if (limit === 1)
        return fail(expectedSeq, "seq_gap", `event ${expectedSeq} missing: next event is ${seq}`);
      limit = 1;
      slowUntil = seq;
      continue;
    }
    for (const e of page) {
      const bad = checkEvent(e, expectedSeq, prev, anchor);
      if (bad) return fail(bad.seq, bad.reason, bad.detail);
      prev = e.hash;
      expectedSeq = e.seq + 1;
      count++;
    }
    if (page.length < limit) break;
    if (limit === 1 && expectedSeq > slowUntil) limit = pageSize;
  }

  if (anchor && count < anchor.seq) {
    return fail(
      count + 1,
      "truncated",
      `the log ends at event ${count}; the expected head is event ${anchor.seq}`,
    );
  }
  return { ok: true, count, headSeq: count, headHash: prev };
}

/** verifyAuditChain, throwing audit.chain_broken (with the failure in `extra`) when it fails. */
export async function assertAuditChain(store: Store, opts: AuditVerifyOptions = {}): Promise<void> {
  const r = await verifyAuditChain(store, opts);
  if (!r.ok) {
    throw new MayflyError("audit.chain_broken", `${r.reason} at event ${r.firstBadSeq}: ${r.detail}`, {
      extra: { firstBadSeq: r.firstBadSeq, reason: r.reason, count: r.count },
    });
  }
}

function unreadableSeq(e: unknown): number | null {
  if (isMayflyError(e) && e.code === "audit.chain_broken" && typeof e.extra?.seq === "number")
    return e.extra.seq;
  return null;
}

type Bad = { seq: number; reason: AuditFailureReason; detail: string };

function checkEvent(
  e: AuditEvent,
  expectedSeq: number,
  prev: Buffer,
  anchor: { seq: number; hash: string } | undefined,
): Bad | null {
  if (e.seq !== expectedSeq) {
    const missing = e.seq - 1 === expectedSeq ? `${expectedSeq}` : `${expectedSeq}..${e.seq - 1}`;
    return {
      seq: expectedSeq,
      reason: "seq_gap",
      detail: `event ${missing} missing: next event is ${e.seq}`,
    };
  }
  if (e.hash.length !== 32 || e.prevHash.length !== 32) {
    return { seq: e.seq, reason: "unreadable", detail: `event ${e.seq}: hash or prevHash is not 32 bytes` };
  }
  const { hash, ...rest } = e;
  let computed: Buffer;
  try {
    computed = auditHash(rest);
  } catch (err) {
    // Stored fields that cannot even be encoded (e.g. a number column holding text).
    return { seq: e.seq, reason: "unreadable", detail: `event ${e.seq}: ${(err as Error).message}` };
  }
  if (!computed.equals(hash)) {
    return {
      seq: e.seq,
      reason: "hash_mismatch",
      detail: `event ${e.seq}: its contents do not match its hash`,
    };
  }
  if (!e.prevHash.equals(prev)) {
    return {
      seq: e.seq,
      reason: "prev_mismatch",
      detail: `event ${e.seq} does not link to event ${e.seq - 1}`,
    };
  }
  if (anchor && e.seq === anchor.seq && hash.toString("hex") !== anchor.hash) {
    return { seq: e.seq, reason: "head_mismatch", detail: `event ${e.seq} differs from the expected head` };
  }
  return null;
}
