import type { Migration } from "../../sqlite/migrations/migration.js";

// PostgreSQL's version of SQLite 0002 (TPM activations, registered EKs): BLOB -> BYTEA.
const sql = `
CREATE TABLE activations (
  id              TEXT    NOT NULL PRIMARY KEY,
  ek_pub_hash     BYTEA   NOT NULL CHECK (length(ek_pub_hash) = 32),
  ek_public       BYTEA   NOT NULL,
  ek_cert_issuer  TEXT,
  trusted_via     TEXT    NOT NULL CHECK (trusted_via IN ('certificate', 'registered')),
  ak_public       BYTEA   NOT NULL,
  ak_name         BYTEA   NOT NULL,
  secret_hash     BYTEA   NOT NULL CHECK (length(secret_hash) = 32),
  state           TEXT    NOT NULL CHECK (state IN ('pending', 'succeeded', 'failed')),
  device_id       TEXT,
  created_at      BIGINT  NOT NULL,
  expires_at      BIGINT  NOT NULL,
  completed_at    BIGINT,
  CONSTRAINT activations_completed_check
    CHECK ((state = 'pending' AND completed_at IS NULL) OR (state <> 'pending' AND completed_at IS NOT NULL)),
  CONSTRAINT activations_device_check CHECK (state <> 'succeeded' OR device_id IS NOT NULL)
);
CREATE INDEX activations_ek_pub_hash_created_at_idx ON activations (ek_pub_hash, created_at);

CREATE TABLE ek_registrations (
  ek_pub_hash  BYTEA   NOT NULL PRIMARY KEY CHECK (length(ek_pub_hash) = 32),
  source       TEXT    NOT NULL,
  note         TEXT,
  created_at   BIGINT  NOT NULL
);
`;

export const pgMigration0002: Migration = { version: 2, name: "activations", sql };
