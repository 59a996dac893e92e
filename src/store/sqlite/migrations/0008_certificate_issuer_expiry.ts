import type { Migration } from "./migration.js";

// Rotation asks, every check interval, for the latest notAfter among one issuer's
// certificates (how long the previous intermediate must stay in the bundle). Without this
// index that is a scan of every row of the issuer: at a million rows it held the write
// lock for seconds. With it, MAX(not_after) WHERE issuer_key_id = ? is one index seek.
const sql = `
CREATE INDEX certificates_issuer_not_after_idx ON certificates (issuer_key_id, not_after);
`;

export const migration0008: Migration = { version: 8, name: "certificate_issuer_expiry", sql };
