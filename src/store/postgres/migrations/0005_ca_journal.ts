import type { Migration } from "../../sqlite/migrations/migration.js";

// PostgreSQL's version of SQLite 0005 (the CA rotation journal). seq is an identity
// column where SQLite has AUTOINCREMENT: both only grow, and gaps are allowed.
const sql = `
CREATE TABLE ca_journal (
  seq          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  rotation_id  TEXT    NOT NULL,
  kind         TEXT    NOT NULL CHECK (kind IN ('intermediate', 'root')),
  step         TEXT    NOT NULL,
  at           BIGINT  NOT NULL,
  data         TEXT    NOT NULL,
  CONSTRAINT ca_journal_rotation_step_key UNIQUE (rotation_id, step)
);
`;

export const pgMigration0005: Migration = { version: 5, name: "ca_journal", sql };
