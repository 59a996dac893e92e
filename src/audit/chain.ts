import { createHash } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import type { Clock } from "../runtime/clock.js";
import type { StoreTx } from "../store/store.js";
import type { AuditDecision, AuditEvent, AuditEventInput, AuditLink } from "../store/types.js";
import { canonicalJson, canonicalJsonCopy, isWellFormedString } from "./canonical.js";

/** The version of the hashed encoding; bump (and keep verifying v1) if its shape changes. */
export const AUDIT_HASH_VERSION = 1;
/** prevHash of the first event. */
export const GENESIS_HASH: Buffer = Buffer.alloc(32);

const DECISIONS: readonly AuditDecision[] = ["allow", "deny", "info"];

/**
 * The bytes an event's hash covers: every field but the hash itself, with prevHash
 * as lowercase hex. seq is inside, so moving a row to another seq breaks its hash;
 * prevHash is inside, so removing or reordering rows breaks the next link.
 */
export function auditHashInput(e: Omit<AuditEvent, "hash">): string {
  return canonicalJson({
    v: AUDIT_HASH_VERSION,
    seq: e.seq,
    ts: e.ts,
    type: e.type,
    decision: e.decision,
    code: e.code,
    actor: e.actor,
    subject: e.subject,
    data: e.data,
    prevHash: e.prevHash.toString("hex"),
  });
}

/**
 * auditHashInput with the data member's canonical encoding given, for sealing: the same
 * octets (members in JCS key order) without encoding data a second time. test/audit proves
 * every sealed event's hash equal to auditHash of the stored event (auditHashInput above,
 * which verification uses).
 */
function hashInputWithData(e: Omit<AuditEvent, "hash" | "data">, dataJson: string): string {
  // The members are strings, null and safe integers: their encodings directly, anything else
  // through canonicalJson, which encodes or refuses it as auditHashInput would.
  const f = (v: unknown, name: string): string =>
    v === null
      ? "null"
      : typeof v === "string" && isWellFormedString(v)
        ? JSON.stringify(v)
        : Number.isSafeInteger(v)
          ? String(v)
          : canonicalJson(v, `$.${name}`);
  return (
    `{"actor":${f(e.actor, "actor")},"code":${f(e.code, "code")},"data":${dataJson}` +
    `,"decision":${f(e.decision, "decision")},"prevHash":${f(e.prevHash.toString("hex"), "prevHash")}` +
    `,"seq":${f(e.seq, "seq")},"subject":${f(e.subject, "subject")},"ts":${f(e.ts, "ts")}` +
    `,"type":${f(e.type, "type")},"v":${AUDIT_HASH_VERSION}}`
  );
}

export function auditHash(e: Omit<AuditEvent, "hash">): Buffer {
  return createHash("sha256").update(auditHashInput(e), "utf8").digest();
}

/**
 * Appends one event at the head of the chain, inside the caller's transaction, so the
 * event commits or rolls back with the decision it records. auditHead() holds the
 * chain head for the rest of the transaction (and the seq primary key refuses a fork
 * with store.conflict if a backend ever lets two writers through).
 */
export async function appendAudit(tx: StoreTx, clock: Clock, input: AuditEventInput): Promise<AuditEvent> {
  checkInput(input);
  const ts = clock.now();
  if (!Number.isSafeInteger(ts)) {
    throw new MayflyError("internal.error", `audit timestamp must be integer milliseconds, got ${ts}`);
  }
  const event = sealAuditEvent(await tx.auditHead(), ts, input);
  await tx.insertAuditEvent(event);
  return event;
}

/**
 * The event that follows `head` (null: the first event), with its hash. Pure: appendAudit
 * is this plus the store; split out so the CPU it costs can be measured on its own.
 */
export function sealAuditEvent(head: AuditLink | null, ts: number, input: AuditEventInput): AuditEvent {
  // One walk encodes data and copies it: the copy is what is stored, and it is exactly what
  // the hash covers (JSON.parse of the encoding would give the same object, at twice the
  // cost); later mutation of the caller's object cannot change either.
  const { json, copy } = canonicalJsonCopy(input.data, "data");
  const unhashed = {
    seq: head ? head.seq + 1 : 1,
    ts,
    type: input.type,
    decision: input.decision,
    code: input.code,
    actor: input.actor,
    subject: input.subject,
    data: copy as Record<string, unknown>,
    prevHash: head ? head.hash : GENESIS_HASH,
  };
  const hash = createHash("sha256").update(hashInputWithData(unhashed, json), "utf8").digest();
  // Named, not `{ ...unhashed, hash }`: on Node 20 a spread followed by members costs µs.
  return {
    seq: unhashed.seq,
    ts,
    type: unhashed.type,
    decision: unhashed.decision,
    code: unhashed.code,
    actor: unhashed.actor,
    subject: unhashed.subject,
    data: unhashed.data,
    prevHash: unhashed.prevHash,
    hash,
  };
}

function checkInput(i: AuditEventInput): void {
  const bad = (field: string, why: string): never => {
    throw new MayflyError("internal.error", `audit event ${field} ${why}`, { field });
  };
  if (typeof i.type !== "string" || i.type === "") bad("type", "must be a non-empty string");
  if (!DECISIONS.includes(i.decision)) bad("decision", `must be one of ${DECISIONS.join(", ")}`);
  for (const f of ["code", "actor", "subject"] as const) {
    if (i[f] !== null && typeof i[f] !== "string") bad(f, "must be a string or null");
  }
  if (i.decision === "deny" && i.code === null) bad("code", "is required on a deny");
  const d = i.data as unknown;
  if (typeof d !== "object" || d === null || Array.isArray(d)) bad("data", "must be a plain object");
}
