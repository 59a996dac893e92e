export { PG_MIGRATIONS } from "./migrations/index.js";
export { PostgresStore, type PostgresStoreOptions } from "./postgres-store.js";
export type { AuditLockMode } from "./postgres-tx.js";
