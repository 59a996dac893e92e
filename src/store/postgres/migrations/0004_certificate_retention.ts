import type { Migration } from "../../sqlite/migrations/migration.js";

// PostgreSQL's version of SQLite 0004 (the certificate retention index). Same statement.
const sql = `
CREATE INDEX certificates_not_after_idx ON certificates (not_after);
`;

export const pgMigration0004: Migration = { version: 4, name: "certificate_retention", sql };
