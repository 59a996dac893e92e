import { MayflyError } from "../errors/index.js";
import { PostgresStore } from "./postgres/index.js";
import { type SqliteDurability, SqliteStore } from "./sqlite/index.js";
import type { Store } from "./store.js";

export interface OpenStoreOptions {
  /** See SqliteStoreOptions and PostgresStoreOptions. Default "full". */
  durability?: SqliteDurability;
  /** Apply pending migrations before returning. Default true. */
  migrate?: boolean;
}

/**
 * The store a URL names:
 *   sqlite:/abs/file.db, sqlite:///abs/file.db, sqlite:rel/file.db, sqlite::memory:
 *   /abs/file.db, rel/file.db, :memory:          (a plain path means SQLite)
 *   postgres://user@host:port/db?..., postgresql://...   (libpq's URL form; the password
 *   belongs in PGPASSWORD or ~/.pgpass, not in the URL, which start-up logs)
 */
export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const target = parseStoreUrl(url);
  const durability = opts.durability ?? "full";
  const store: Store =
    target.kind === "postgres"
      ? new PostgresStore({ connectionString: target.url, durability })
      : new SqliteStore({ path: target.path, durability });
  if (opts.migrate ?? true) {
    try {
      await store.migrate();
    } catch (e) {
      await store.close();
      throw e;
    }
  }
  return store;
}

export type StoreTarget = { kind: "sqlite"; path: string } | { kind: "postgres"; url: string };

export function parseStoreUrl(url: string): StoreTarget {
  const invalid = (detail: string) => new MayflyError("config.invalid", detail, { field: "store.url" });
  if (url.trim() === "") throw invalid("the store URL is empty");
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):/.exec(url)?.[1]?.toLowerCase();
  // A one-letter "scheme" is a Windows drive ("C:\\data\\mayfly.db"), i.e. a plain path.
  if (scheme === undefined || scheme.length === 1) return { kind: "sqlite", path: url };
  if (scheme === "sqlite") {
    let path = url.slice("sqlite:".length);
    if (path.startsWith("//")) path = path.slice(2); // sqlite:///abs -> /abs
    if (path === "") throw invalid("the sqlite: URL names no file");
    return { kind: "sqlite", path };
  }
  if (scheme === "postgres" || scheme === "postgresql") {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw invalid("the postgres: URL is malformed");
    }
    if (u.pathname === "" || u.pathname === "/") throw invalid("the postgres: URL names no database");
    return { kind: "postgres", url };
  }
  throw invalid(`unknown store URL scheme "${scheme}:"; expected sqlite:, postgres: or a file path`);
}
