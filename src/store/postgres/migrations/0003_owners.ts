import type { Migration } from "../../sqlite/migrations/migration.js";

// PostgreSQL's version of SQLite 0003 (owner lifecycle: SCIM users, agent transfers,
// owners.groups, agents.status_reason). The SQL is the same statement for statement.
const sql = `
ALTER TABLE owners ADD COLUMN groups TEXT NOT NULL DEFAULT '[]';
ALTER TABLE agents ADD COLUMN status_reason TEXT;
CREATE INDEX agents_status_idx ON agents (status, id);

CREATE TABLE scim_users (
  id             TEXT    NOT NULL PRIMARY KEY,
  owner_id       TEXT    NOT NULL REFERENCES owners (id),
  user_name      TEXT    NOT NULL,
  user_name_key  TEXT    NOT NULL,
  external_id    TEXT,
  active         BOOLEAN NOT NULL,
  resource       TEXT    NOT NULL,
  version        BIGINT  NOT NULL CHECK (version >= 1),
  created_at     BIGINT  NOT NULL,
  updated_at     BIGINT  NOT NULL,
  CONSTRAINT scim_users_user_name_key UNIQUE (user_name_key),
  CONSTRAINT scim_users_owner_id_key UNIQUE (owner_id)
);

CREATE TABLE agent_transfers (
  id             TEXT    NOT NULL PRIMARY KEY,
  agent_id       TEXT    NOT NULL REFERENCES agents (id),
  from_owner_id  TEXT    NOT NULL REFERENCES owners (id),
  to_owner_id    TEXT    NOT NULL REFERENCES owners (id),
  offered_by     TEXT    NOT NULL,
  state          TEXT    NOT NULL CHECK (state IN ('pending', 'accepted', 'cancelled')),
  created_at     BIGINT  NOT NULL,
  expires_at     BIGINT  NOT NULL,
  completed_at   BIGINT,
  CONSTRAINT agent_transfers_completed_check
    CHECK ((state = 'pending' AND completed_at IS NULL) OR (state <> 'pending' AND completed_at IS NOT NULL))
);
CREATE INDEX agent_transfers_agent_id_idx ON agent_transfers (agent_id);
CREATE INDEX agent_transfers_from_owner_id_idx ON agent_transfers (from_owner_id);
CREATE INDEX agent_transfers_to_owner_id_idx ON agent_transfers (to_owner_id);
`;

export const pgMigration0003: Migration = { version: 3, name: "owners", sql };
