import { migration0001 } from "./0001_initial.js";
import { migration0002 } from "./0002_activations.js";
import { migration0003 } from "./0003_owners.js";
import { migration0004 } from "./0004_certificate_retention.js";
import { migration0005 } from "./0005_ca_journal.js";
import { migration0006 } from "./0006_mdm.js";
import { migration0007 } from "./0007_ak_qualified_name.js";
import { migration0008 } from "./0008_certificate_issuer_expiry.js";
import { migration0009 } from "./0009_server_secrets.js";
import { migration0010 } from "./0010_facts_version.js";
import { migration0011 } from "./0011_drop_challenges.js";
import type { Migration } from "./migration.js";

export type { Migration } from "./migration.js";

/**
 * In order of version, from 1. Versions ascend but need not be contiguous: steps made on
 * parallel branches take their numbers up front. Append new
 * steps, never reorder or renumber; see migrate.ts for a database that lacks a step older
 * than its newest.
 */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  migration0001,
  migration0002,
  migration0003,
  migration0004,
  migration0005,
  migration0006,
  migration0007,
  migration0008,
  migration0009,
  migration0010,
  migration0011,
];
