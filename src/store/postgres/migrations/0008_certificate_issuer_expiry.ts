import type { Migration } from "../../sqlite/migrations/migration.js";

// PostgreSQL's version of SQLite 0008 (latest notAfter per issuer, for rotation). Same statement.
const sql = `
CREATE INDEX certificates_issuer_not_after_idx ON certificates (issuer_key_id, not_after);
`;

export const pgMigration0008: Migration = { version: 8, name: "certificate_issuer_expiry", sql };
