import { MayflyError } from "../../errors/index.js";

// better-sqlite3 throws SqliteError with an extended result code in `code` and, for
// UNIQUE and PRIMARY KEY failures, the columns in the message
// ("UNIQUE constraint failed: certificates.issuer_key_id, certificates.serial").
// The columns are how we tell which invariant a write ran into.

interface SqliteErrorLike {
  code: string;
  message: string;
}

function isSqliteError(e: unknown): e is SqliteErrorLike {
  if (!(e instanceof Error)) return false;
  const code: unknown = (e as unknown as { code?: unknown }).code;
  return typeof code === "string" && code.startsWith("SQLITE_");
}

/** The "table.column, table.column" list of a UNIQUE/PRIMARY KEY failure, or "". */
function uniqueColumns(message: string): string {
  const m = /constraint failed: (.*)$/.exec(message);
  return m?.[1] ?? "";
}

/**
 * Turns a driver error into a MayflyError with a stable code. `what` names the
 * operation for the detail. Errors that are already MayflyErrors pass through.
 */
export function mapSqliteError(e: unknown, what: string): unknown {
  if (!isSqliteError(e)) return e;
  const code = e.code;
  if (code === "SQLITE_CONSTRAINT_UNIQUE" || code === "SQLITE_CONSTRAINT_PRIMARYKEY") {
    const cols = uniqueColumns(e.message);
    if (cols.includes("certificates.serial")) {
      return new MayflyError("certificate.serial_collision", `${what}: serial already used by this issuer`, {
        cause: e,
      });
    }
    if (cols.includes("certificates.challenge_nonce")) {
      // Minting a challenge writes nothing (a MAC'd nonce); the certificate row is the
      // only record of its redemption, so a second certificate for a nonce is a second
      // redemption. The detail names no operation: it is the client's problem body.
      return new MayflyError("challenge.consumed", "the challenge was already used", {
        cause: e,
        field: "nonce",
        extra: { constraint: "certificates.challenge_nonce" },
      });
    }
    if (cols.includes("agents.owner_id") && cols.includes("agents.name")) {
      return new MayflyError("store.conflict", `${what}: the owner already has an agent with that name`, {
        cause: e,
        extra: { constraint: "agents.owner_id,name" },
      });
    }
    if (cols === "activations.id") {
      return new MayflyError("store.conflict", `${what}: an activation with that id already exists`, {
        cause: e,
        extra: { constraint: "activations.id" },
      });
    }
    return new MayflyError("store.conflict", `${what}: already exists (${cols})`, {
      cause: e,
      extra: { constraint: cols },
    });
  }
  if (code === "SQLITE_CONSTRAINT_FOREIGNKEY") {
    return new MayflyError("store.conflict", `${what}: refers to a record that does not exist`, { cause: e });
  }
  if (code === "SQLITE_BUSY" || code.startsWith("SQLITE_BUSY_") || code === "SQLITE_LOCKED") {
    return new MayflyError(
      "store.conflict",
      `${what}: the database is busy (another process holds the lock)`,
      {
        cause: e,
      },
    );
  }
  // CHECK and NOT NULL failures mean a caller passed a value outside the model; other
  // codes (I/O, corruption) are operational. Neither is the client's fault.
  return new MayflyError("internal.error", `${what}: ${code}: ${e.message}`, { cause: e });
}
