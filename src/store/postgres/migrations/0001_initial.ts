import type { Migration } from "../../sqlite/migrations/migration.js";

// PostgreSQL's version of SQLite 0001 (src/store/sqlite/migrations/0001_initial.ts): the
// same tables, columns, constraint names and indexes, with BLOB -> BYTEA. Constraint
// names matter: errors.ts tells which invariant a write ran into by them.
//
// One addition: audit_head, a table of exactly one row that every audit append locks
// (SELECT ... FOR UPDATE) before reading the last event, so that appends from any
// number of connections and replicas form one chain (README: "PostgreSQL"). It holds
// no data: the head is always read from audit_events itself.
const sql = `
CREATE TABLE owners (
  id            TEXT    NOT NULL PRIMARY KEY,
  issuer        TEXT    NOT NULL,
  subject       TEXT    NOT NULL,
  email         TEXT,
  display_name  TEXT,
  status        TEXT    NOT NULL CHECK (status IN ('active', 'suspended', 'deprovisioned')),
  manager       TEXT,
  department    TEXT,
  created_at    BIGINT  NOT NULL,
  updated_at    BIGINT  NOT NULL,
  CONSTRAINT owners_issuer_subject_key UNIQUE (issuer, subject)
);

CREATE TABLE devices (
  id                 TEXT    NOT NULL PRIMARY KEY,
  kind               TEXT    NOT NULL CHECK (kind IN ('tpm', 'managed')),
  status             TEXT    NOT NULL CHECK (status IN ('active', 'unenrolled')),
  ek_pub_hash        BYTEA,
  ek_cert_issuer     TEXT,
  ak_name            BYTEA,
  ak_public          BYTEA,
  serial             TEXT,
  mdm_id             TEXT,
  managed            BOOLEAN NOT NULL,
  compliant          BOOLEAN NOT NULL,
  assigned_owner_id  TEXT,
  created_at         BIGINT  NOT NULL,
  updated_at         BIGINT  NOT NULL
);
CREATE UNIQUE INDEX devices_ek_pub_hash_key ON devices (ek_pub_hash);

CREATE TABLE agents (
  id              TEXT    NOT NULL PRIMARY KEY,
  name            TEXT    NOT NULL,
  owner_id        TEXT    NOT NULL REFERENCES owners (id),
  device_id       TEXT    NOT NULL REFERENCES devices (id),
  spiffe_id       TEXT    NOT NULL,
  purpose         TEXT    NOT NULL,
  profile         TEXT    NOT NULL,
  status          TEXT    NOT NULL
                  CHECK (status IN ('active', 'suspended', 'quarantined', 'dormant', 'retired')),
  expires_at      BIGINT  NOT NULL,
  last_issued_at  BIGINT,
  created_at      BIGINT  NOT NULL,
  updated_at      BIGINT  NOT NULL,
  CONSTRAINT agents_owner_name_key UNIQUE (owner_id, name),
  CONSTRAINT agents_spiffe_id_key UNIQUE (spiffe_id)
);
CREATE INDEX agents_device_id_idx ON agents (device_id);

CREATE TABLE bindings (
  agent_id       TEXT    NOT NULL PRIMARY KEY REFERENCES agents (id),
  owner_id       TEXT    NOT NULL REFERENCES owners (id),
  token_issuer   TEXT    NOT NULL,
  token_subject  TEXT    NOT NULL,
  auth_time      BIGINT  NOT NULL,
  affirmed_at    BIGINT  NOT NULL,
  expires_at     BIGINT  NOT NULL
);
CREATE INDEX bindings_owner_id_idx ON bindings (owner_id);

CREATE TABLE challenges (
  nonce        BYTEA   NOT NULL PRIMARY KEY,
  agent_id     TEXT    NOT NULL REFERENCES agents (id),
  created_at   BIGINT  NOT NULL,
  expires_at   BIGINT  NOT NULL,
  consumed_at  BIGINT
);
CREATE INDEX challenges_expires_at_idx ON challenges (expires_at);
CREATE INDEX challenges_agent_id_idx ON challenges (agent_id);

CREATE TABLE certificates (
  issuer_key_id    BYTEA   NOT NULL,
  serial           BYTEA   NOT NULL,
  agent_id         TEXT    NOT NULL REFERENCES agents (id),
  challenge_nonce  BYTEA,
  not_before       BIGINT  NOT NULL,
  not_after        BIGINT  NOT NULL,
  der              BYTEA   NOT NULL,
  fingerprint      BYTEA   NOT NULL,
  created_at       BIGINT  NOT NULL,
  CONSTRAINT certificates_pkey PRIMARY KEY (issuer_key_id, serial),
  CONSTRAINT certificates_challenge_nonce_key UNIQUE (challenge_nonce)
);
CREATE INDEX certificates_agent_id_idx ON certificates (agent_id, created_at);

CREATE TABLE ca_certificates (
  id          TEXT    NOT NULL PRIMARY KEY,
  role        TEXT    NOT NULL CHECK (role IN ('root', 'intermediate')),
  slot        TEXT    NOT NULL CHECK (slot IN ('current', 'next', 'previous', 'retired')),
  key_label   TEXT    NOT NULL,
  der         BYTEA   NOT NULL,
  not_before  BIGINT  NOT NULL,
  not_after   BIGINT  NOT NULL,
  created_at  BIGINT  NOT NULL
);

CREATE TABLE audit_events (
  seq        BIGINT  NOT NULL PRIMARY KEY CHECK (seq >= 1),
  ts         BIGINT  NOT NULL,
  type       TEXT    NOT NULL,
  decision   TEXT    NOT NULL CHECK (decision IN ('allow', 'deny', 'info')),
  code       TEXT,
  actor      TEXT,
  subject    TEXT,
  data       TEXT    NOT NULL,
  prev_hash  BYTEA   NOT NULL CHECK (length(prev_hash) = 32),
  hash       BYTEA   NOT NULL CHECK (length(hash) = 32)
);

CREATE TABLE audit_head (
  id  SMALLINT NOT NULL PRIMARY KEY CHECK (id = 1)
);
INSERT INTO audit_head (id) VALUES (1);
`;

export const pgMigration0001: Migration = { version: 1, name: "initial", sql };
