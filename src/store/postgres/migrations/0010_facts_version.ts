import type { Migration } from "../../sqlite/migrations/migration.js";

// SQLite 0010 (facts_version, moved by triggers on every change to owners, devices,
// bindings and agents, for the SQLite process-local facts cache) has no PostgreSQL
// counterpart, on purpose: PostgreSQL's getIssuanceFacts locks the four rows instead of
// caching them, and one row that every fact change must update would serialize all such
// changes and let two of them deadlock (row A then the version row, against row B then
// the version row). The step exists so both backends keep one numbering.
const sql = `
-- No change: see src/store/postgres/migrations/0010_facts_version.ts.
SELECT 1;
`;

export const pgMigration0010: Migration = { version: 10, name: "facts_version", sql };
