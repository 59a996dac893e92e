export { SQLITE_MIGRATIONS } from "./migrations/index.js";
export { type SqliteDurability, SqliteStore, type SqliteStoreOptions } from "./sqlite-store.js";
