import type { Migration } from "./migration.js";

// Secrets the CA keeps for itself, shared by every worker process and replica on one
// database: the first is the key that MACs challenge nonces (src/authority/challenges.ts),
// so a nonce minted by any process verifies in any other without a row per challenge.
// One row per name; the first process to insert a value wins and everyone reads it.
const sql = `
CREATE TABLE server_secrets (
  name   TEXT  NOT NULL PRIMARY KEY,
  value  BLOB  NOT NULL
);
`;

export const migration0009: Migration = { version: 9, name: "server_secrets", sql };
