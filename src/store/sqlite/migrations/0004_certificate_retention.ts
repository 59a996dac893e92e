import type { Migration } from "./migration.js";

// Retention (store.certificateRetention): the tidy job deletes certificates whose
// notAfter is older than the retention, a bounded batch at a time, oldest first. This
// index makes each batch a range read instead of a scan of every certificate row.
const sql = `
CREATE INDEX certificates_not_after_idx ON certificates (not_after);
`;

export const migration0004: Migration = { version: 4, name: "certificate_retention", sql };
