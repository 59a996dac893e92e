import type { Migration } from "../../sqlite/migrations/migration.js";

// PostgreSQL's version of SQLite 0009 (the CA's own secrets, e.g. the challenge MAC key).
const sql = `
CREATE TABLE server_secrets (
  name   TEXT   NOT NULL PRIMARY KEY,
  value  BYTEA  NOT NULL
);
`;

export const pgMigration0009: Migration = { version: 9, name: "server_secrets", sql };
