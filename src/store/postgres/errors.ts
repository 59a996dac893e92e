import { MayflyError } from "../../errors/index.js";

// pg throws DatabaseError with the SQLSTATE in `code` and, for constraint failures, the
// constraint's name in `constraint`. The migrations name every constraint the CA relies
// on exactly as SQLite's do, so the same write maps to the same MayflyError code on
// both backends.

interface PgErrorLike {
  code: string;
  message: string;
  constraint?: string;
}

/** A server-side error: a five-character SQLSTATE. Socket errors have codes such as ECONNREFUSED. */
export function isPgError(e: unknown): e is PgErrorLike {
  if (!(e instanceof Error)) return false;
  const code: unknown = (e as unknown as { code?: unknown }).code;
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code);
}

/**
 * Failures that say "run the transaction again" rather than "this is wrong":
 * serialization_failure and deadlock_detected. Nothing was committed.
 */
export function isRetryable(e: unknown): boolean {
  return isPgError(e) && (e.code === "40001" || e.code === "40P01");
}

/** A second event for one audit seq: two appends read the same head. */
export function isAuditSeqConflict(e: unknown): boolean {
  return isPgError(e) && e.code === "23505" && e.constraint === "audit_events_pkey";
}

const CONSTRAINTS: Record<
  string,
  {
    code: "certificate.serial_collision" | "challenge.consumed" | "store.conflict";
    detail: string;
    field?: string;
    bare?: boolean;
  }
> = {
  certificates_pkey: { code: "certificate.serial_collision", detail: "serial already used by this issuer" },
  // Minting a challenge writes nothing (a MAC'd nonce); the certificate row is the only
  // record of its redemption, so a second certificate for a nonce is a second redemption.
  // `bare`: the detail is the client's problem body, the same as SQLite's, without the
  // operation's name.
  certificates_challenge_nonce_key: {
    code: "challenge.consumed",
    detail: "the challenge was already used",
    field: "nonce",
    bare: true,
  },
  agents_owner_name_key: { code: "store.conflict", detail: "the owner already has an agent with that name" },
  activations_pkey: { code: "store.conflict", detail: "an activation with that id already exists" },
  audit_events_pkey: { code: "store.conflict", detail: "an audit event with that seq already exists" },
};

/**
 * Turns a driver error into a MayflyError with a stable code. `what` names the
 * operation for the detail. Errors that are already MayflyErrors pass through.
 */
export function mapPgError(e: unknown, what: string): unknown {
  if (e instanceof MayflyError) return e;
  if (!isPgError(e)) {
    if (e instanceof Error) {
      // Socket-level: the server went away, refused us, or timed out.
      return new MayflyError("internal.error", `${what}: database connection failed: ${e.message}`, {
        cause: e,
      });
    }
    return e;
  }
  const constraint = e.constraint ?? "";
  switch (e.code) {
    case "23505": {
      const known = CONSTRAINTS[constraint];
      return new MayflyError(
        known?.code ?? "store.conflict",
        known?.bare ? known.detail : `${what}: ${known?.detail ?? "already exists"}`,
        {
          cause: e,
          extra: { constraint },
          ...(known?.field ? { field: known.field } : {}),
        },
      );
    }
    case "23503":
      return new MayflyError("store.conflict", `${what}: refers to a record that does not exist`, {
        cause: e,
        extra: { constraint },
      });
    case "40001":
    case "40P01":
      return new MayflyError("store.conflict", `${what}: concurrent transactions conflicted; retry`, {
        cause: e,
      });
    case "25006":
      // read_only_sql_transaction: a write inside store.read().
      return new MayflyError(
        "internal.error",
        `${what}: store.read(): a read-only transaction cannot write; use tx()`,
        { cause: e },
      );
    case "55P03":
      return new MayflyError("store.conflict", `${what}: a lock could not be taken in time`, { cause: e });
    default:
      // CHECK and NOT NULL failures (23514, 23502) mean a caller passed a value outside
      // the model; the rest (connection loss 08xxx/57Pxx, disk full, ...) are
      // operational. Neither is the client's fault.
      return new MayflyError("internal.error", `${what}: ${e.code}: ${e.message}`, { cause: e });
  }
}
