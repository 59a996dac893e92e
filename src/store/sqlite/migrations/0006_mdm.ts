import type { Migration } from "./migration.js";

// Device-management (MDM) hooks and device posture (issue 8). Same rules as 0001:
// portable to PostgreSQL with BLOB -> BYTEA only, times in epoch ms as BIGINT.
//
// devices gains what the MDM last said: the assigned user as the MDM names them, the
// platform, why it last changed compliance, the event time of its last posture statement
// (maxPostureAge counts from it) and of the last event applied (an older event never
// overrides it). mdm_id becomes unique: the MDM's id is how its events find the device
// (NULLs, devices the MDM never named, do not collide).
//
// hook_jtis holds the jti of every applied hook event until its iat is too old to be
// accepted anyway, so a replayed event is refused across replicas and restarts. source
// is "mdm:<mdm.name>", so two senders' jtis cannot collide.
const sql = `
ALTER TABLE devices ADD COLUMN assigned_user TEXT;
ALTER TABLE devices ADD COLUMN platform TEXT;
ALTER TABLE devices ADD COLUMN compliance_reason TEXT;
ALTER TABLE devices ADD COLUMN posture_at BIGINT;
ALTER TABLE devices ADD COLUMN mdm_event_at BIGINT;
CREATE UNIQUE INDEX devices_mdm_id_key ON devices (mdm_id);

CREATE TABLE hook_jtis (
  source      TEXT    NOT NULL,
  jti         TEXT    NOT NULL,
  expires_at  BIGINT  NOT NULL,
  created_at  BIGINT  NOT NULL,
  CONSTRAINT hook_jtis_pkey PRIMARY KEY (source, jti)
);
CREATE INDEX hook_jtis_expires_at_idx ON hook_jtis (expires_at);
`;

export const migration0006: Migration = { version: 6, name: "mdm", sql };
