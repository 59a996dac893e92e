import type { Migration } from "./migration.js";

// The schema the Store interface (src/store/types.ts) maps onto, one column per field.
// Written to port to PostgreSQL with type renames only (BLOB -> BYTEA; BOOLEAN binds
// true/false there, 0/1 here): no AUTOINCREMENT, no rowid, no WITHOUT ROWID, no
// partial or expression indexes. Times are epoch milliseconds in BIGINT.
//
// The constraints are the invariants the CA relies on, enforced where every replica
// meets them: a serial once per issuer, a challenge at most one certificate, one agent
// name per owner, one audit event per seq (so two writers cannot fork the chain).
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
  ek_pub_hash        BLOB,
  ek_cert_issuer     TEXT,
  ak_name            BLOB,
  ak_public          BLOB,
  serial             TEXT,
  mdm_id             TEXT,
  managed            BOOLEAN NOT NULL,
  compliant          BOOLEAN NOT NULL,
  assigned_owner_id  TEXT,
  created_at         BIGINT  NOT NULL,
  updated_at         BIGINT  NOT NULL
);
-- One device per EK: findDeviceByEkHash must never have to choose. NULLs (managed
-- devices without a TPM) do not collide, in SQLite and PostgreSQL alike.
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
  nonce        BLOB    NOT NULL PRIMARY KEY,
  agent_id     TEXT    NOT NULL REFERENCES agents (id),
  created_at   BIGINT  NOT NULL,
  expires_at   BIGINT  NOT NULL,
  consumed_at  BIGINT
);
CREATE INDEX challenges_expires_at_idx ON challenges (expires_at);
CREATE INDEX challenges_agent_id_idx ON challenges (agent_id);

-- challenge_nonce deliberately has no foreign key: expired challenges are purged,
-- the certificates issued against them are kept.
CREATE TABLE certificates (
  issuer_key_id    BLOB    NOT NULL,
  serial           BLOB    NOT NULL,
  agent_id         TEXT    NOT NULL REFERENCES agents (id),
  challenge_nonce  BLOB,
  not_before       BIGINT  NOT NULL,
  not_after        BIGINT  NOT NULL,
  der              BLOB    NOT NULL,
  fingerprint      BLOB    NOT NULL,
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
  der         BLOB    NOT NULL,
  not_before  BIGINT  NOT NULL,
  not_after   BIGINT  NOT NULL,
  created_at  BIGINT  NOT NULL
);

-- data is the event's JSON text, kept as text (not a JSON column type) so that what
-- was hashed is what is read back.
CREATE TABLE audit_events (
  seq        BIGINT  NOT NULL PRIMARY KEY CHECK (seq >= 1),
  ts         BIGINT  NOT NULL,
  type       TEXT    NOT NULL,
  decision   TEXT    NOT NULL CHECK (decision IN ('allow', 'deny', 'info')),
  code       TEXT,
  actor      TEXT,
  subject    TEXT,
  data       TEXT    NOT NULL,
  prev_hash  BLOB    NOT NULL CHECK (length(prev_hash) = 32),
  hash       BLOB    NOT NULL CHECK (length(hash) = 32)
);
`;

export const migration0001: Migration = { version: 1, name: "initial", sql };
