import type { Migration } from "../../sqlite/migrations/migration.js";

// PostgreSQL's version of SQLite 0011 (the redeemed-challenge rows go; the certificate
// row's unique nonce is the one-time guarantee). Same statement; the indexes go with it.
const sql = `
DROP TABLE challenges;
`;

export const pgMigration0011: Migration = { version: 11, name: "drop_challenges", sql };
