import type { Migration } from "../../sqlite/migrations/migration.js";
import { pgMigration0001 } from "./0001_initial.js";
import { pgMigration0002 } from "./0002_activations.js";
import { pgMigration0003 } from "./0003_owners.js";
import { pgMigration0004 } from "./0004_certificate_retention.js";
import { pgMigration0005 } from "./0005_ca_journal.js";
import { pgMigration0006 } from "./0006_mdm.js";
import { pgMigration0007 } from "./0007_ak_qualified_name.js";
import { pgMigration0008 } from "./0008_certificate_issuer_expiry.js";
import { pgMigration0009 } from "./0009_server_secrets.js";
import { pgMigration0010 } from "./0010_facts_version.js";
import { pgMigration0011 } from "./0011_drop_challenges.js";

export type { Migration } from "../../sqlite/migrations/migration.js";

/**
 * In order of version, ascending but not necessarily contiguous (as SQLITE_MIGRATIONS),
 * and the same versions and names as SQLITE_MIGRATIONS (a test holds them in step).
 * Append new steps, never reorder or renumber.
 */
export const PG_MIGRATIONS: readonly Migration[] = [
  pgMigration0001,
  pgMigration0002,
  pgMigration0003,
  pgMigration0004,
  pgMigration0005,
  pgMigration0006,
  pgMigration0007,
  pgMigration0008,
  pgMigration0009,
  pgMigration0010,
  pgMigration0011,
];
