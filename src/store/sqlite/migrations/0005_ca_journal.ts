import type { Migration } from "./migration.js";

// The CA rotation journal (issue 9): one row per completed step of an intermediate or
// root rotation, written in the transaction that changes the slots, so a crash between
// steps leaves a state the next tick or command reads and continues from.
// (rotation_id, step) is unique: a step taken by several replicas at once is recorded
// once, and the losers see that and change nothing. seq only grows (AUTOINCREMENT never
// reuses a value); the number of rows is the trust bundle's sequence number. data is the
// step's JSON text (times, fingerprints, cross certificates as base64url DER).
const sql = `
CREATE TABLE ca_journal (
  seq          INTEGER PRIMARY KEY AUTOINCREMENT,
  rotation_id  TEXT    NOT NULL,
  kind         TEXT    NOT NULL CHECK (kind IN ('intermediate', 'root')),
  step         TEXT    NOT NULL,
  at           BIGINT  NOT NULL,
  data         TEXT    NOT NULL,
  CONSTRAINT ca_journal_rotation_step_key UNIQUE (rotation_id, step)
);
`;

export const migration0005: Migration = { version: 5, name: "ca_journal", sql };
