import type { Migration } from "./migration.js";

// Owner lifecycle (issue 4): SCIM-provisioned users, agent transfers, and the two columns
// the lifecycle needs on existing tables. Same rules as 0001: portable to PostgreSQL with
// BLOB -> BYTEA only, times in epoch ms as BIGINT, no partial or expression indexes.
//
// owners.groups is the JSON array of the groups claim at the last login ('[]' for rows
// written before this step). agents.status_reason says who took an agent out of
// 'active' (see AgentStatusReason), which decides who may bring it back.
//
// scim_users.user_name_key is the lower-cased userName: userName is case-insensitive
// (RFC 7643 §4.1.1) and unique, and a lower() expression index would not port. One SCIM
// user per owner: the provisioning client cannot make two resources for one person.
// resource is the client's JSON text, kept as text so it reads back as written.
//
// agent_transfers: an offer is pending until accepted or cancelled (completed_at moves
// with it, as in activations); an expired offer stays pending and is refused by time.
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

export const migration0003: Migration = { version: 3, name: "owners", sql };
