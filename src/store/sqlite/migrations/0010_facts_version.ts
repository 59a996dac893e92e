import type { Migration } from "./migration.js";

// One value that changes whenever anything an issuance decides on changes: a row of
// owners, devices or bindings inserted, updated or deleted, or an agent row inserted,
// deleted or updated in any column but last_issued_at (which every issuance writes and
// no issuance decision reads). The triggers set it, so every writer -- any process, any
// code path, the sqlite3 shell -- moves it in the same transaction as the change.
//
// It is a fresh random value, not a counter: a change that is rolled back must never
// leave a value a later, different change could take again, since a process caches the
// facts it read under a value (src/store/sqlite/facts-cache.ts) and serves them while
// the value stands.
const sql = `
CREATE TABLE facts_version (
  id  INTEGER  NOT NULL PRIMARY KEY CHECK (id = 1),
  v   TEXT     NOT NULL
);
INSERT INTO facts_version (id, v) VALUES (1, hex(randomblob(16)));

CREATE TRIGGER owners_facts_insert AFTER INSERT ON owners
BEGIN UPDATE facts_version SET v = hex(randomblob(16)) WHERE id = 1; END;
CREATE TRIGGER owners_facts_update AFTER UPDATE ON owners
BEGIN UPDATE facts_version SET v = hex(randomblob(16)) WHERE id = 1; END;
CREATE TRIGGER owners_facts_delete AFTER DELETE ON owners
BEGIN UPDATE facts_version SET v = hex(randomblob(16)) WHERE id = 1; END;

CREATE TRIGGER devices_facts_insert AFTER INSERT ON devices
BEGIN UPDATE facts_version SET v = hex(randomblob(16)) WHERE id = 1; END;
CREATE TRIGGER devices_facts_update AFTER UPDATE ON devices
BEGIN UPDATE facts_version SET v = hex(randomblob(16)) WHERE id = 1; END;
CREATE TRIGGER devices_facts_delete AFTER DELETE ON devices
BEGIN UPDATE facts_version SET v = hex(randomblob(16)) WHERE id = 1; END;

CREATE TRIGGER bindings_facts_insert AFTER INSERT ON bindings
BEGIN UPDATE facts_version SET v = hex(randomblob(16)) WHERE id = 1; END;
CREATE TRIGGER bindings_facts_update AFTER UPDATE ON bindings
BEGIN UPDATE facts_version SET v = hex(randomblob(16)) WHERE id = 1; END;
CREATE TRIGGER bindings_facts_delete AFTER DELETE ON bindings
BEGIN UPDATE facts_version SET v = hex(randomblob(16)) WHERE id = 1; END;

CREATE TRIGGER agents_facts_insert AFTER INSERT ON agents
BEGIN UPDATE facts_version SET v = hex(randomblob(16)) WHERE id = 1; END;
CREATE TRIGGER agents_facts_update AFTER UPDATE OF
  id, name, owner_id, device_id, spiffe_id, purpose, profile, status, status_reason,
  expires_at, created_at, updated_at
ON agents
BEGIN UPDATE facts_version SET v = hex(randomblob(16)) WHERE id = 1; END;
CREATE TRIGGER agents_facts_delete AFTER DELETE ON agents
BEGIN UPDATE facts_version SET v = hex(randomblob(16)) WHERE id = 1; END;
`;

export const migration0010: Migration = { version: 10, name: "facts_version", sql };
