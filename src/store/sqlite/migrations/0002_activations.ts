import type { Migration } from "./migration.js";

// TPM credential activations (DESIGN.md: TPM device activation) and the EKs an operator
// or an MDM hook vouched for. Same rules as 0001: portable to PostgreSQL with
// BLOB -> BYTEA only, times in epoch ms as BIGINT.
//
// activations is the one-attempt record of each MakeCredential challenge. The state
// and completed_at move together (pending <=> not yet completed), and a success names
// its device. device_id has no foreign key on purpose: completeActivation is the gate
// that picks the single winner, and a caller may pass it and only then create the
// device in the same transaction; a checked-at-once reference would forbid that order.
// ek_pub_hash does not reference ek_registrations either: most EKs are trusted through
// their certificate and never registered, and a registration may be withdrawn later.
//
// ek_registrations.created_at is when the EK was first vouched for; re-registering
// replaces source and note but keeps it (see SqliteTx.upsertEkRegistration).
const sql = `
CREATE TABLE activations (
  id              TEXT    NOT NULL PRIMARY KEY,
  ek_pub_hash     BLOB    NOT NULL CHECK (length(ek_pub_hash) = 32),
  ek_public       BLOB    NOT NULL,
  ek_cert_issuer  TEXT,
  trusted_via     TEXT    NOT NULL CHECK (trusted_via IN ('certificate', 'registered')),
  ak_public       BLOB    NOT NULL,
  ak_name         BLOB    NOT NULL,
  secret_hash     BLOB    NOT NULL CHECK (length(secret_hash) = 32),
  state           TEXT    NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
  device_id       TEXT,
  created_at      BIGINT  NOT NULL,
  expires_at      BIGINT  NOT NULL,
  completed_at    BIGINT,
  CONSTRAINT activations_completed_check
    CHECK ((state = 'pending' AND completed_at IS NULL) OR (state <> 'pending' AND completed_at IS NOT NULL)),
  CONSTRAINT activations_device_check CHECK (state <> 'succeeded' OR device_id IS NOT NULL)
);
-- countActivationsSince: per-EK rate limiting over a recent window.
CREATE INDEX activations_ek_pub_hash_created_at_idx ON activations (ek_pub_hash, created_at);

CREATE TABLE ek_registrations (
  ek_pub_hash  BLOB    NOT NULL PRIMARY KEY CHECK (length(ek_pub_hash) = 32),
  source       TEXT    NOT NULL,
  note         TEXT,
  created_at   BIGINT  NOT NULL
);
`;

export const migration0002: Migration = { version: 2, name: "activations", sql };
