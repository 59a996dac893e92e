import type { Migration } from "../../sqlite/migrations/migration.js";

// PostgreSQL's version of SQLite 0007 (the AK's expected qualified name): BLOB -> BYTEA.
const sql = `
ALTER TABLE devices ADD COLUMN ak_qualified_name BYTEA;
`;

export const pgMigration0007: Migration = { version: 7, name: "ak_qualified_name", sql };
