import type { Migration } from "../../sqlite/migrations/migration.js";

// PostgreSQL's version of SQLite 0006 (MDM hooks, device posture): the same statements.
const sql = `
ALTER TABLE devices ADD COLUMN assigned_user TEXT;
ALTER TABLE devices ADD COLUMN platform TEXT;
ALTER TABLE devices ADD COLUMN compliance_reason TEXT;
ALTER TABLE devices ADD COLUMN posture_at BIGINT;
ALTER TABLE devices ADD COLUMN mdm_event_at BIGINT;
CREATE UNIQUE INDEX devices_mdm_id_key ON devices (mdm_id);

CREATE TABLE hook_jtis (
  source      TEXT    NOT NULL,
  jti         TEXT    NOT NULL,
  expires_at  BIGINT  NOT NULL,
  created_at  BIGINT  NOT NULL,
  CONSTRAINT hook_jtis_pkey PRIMARY KEY (source, jti)
);
CREATE INDEX hook_jtis_expires_at_idx ON hook_jtis (expires_at);
`;

export const pgMigration0006: Migration = { version: 6, name: "mdm", sql };
