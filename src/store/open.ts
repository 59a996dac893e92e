import { MayflyError } from "../errors/index.js";
import { type SqliteDurability, SqliteStore } from "./sqlite/index.js";
import type { Store } from "./store.js";

export interface OpenStoreOptions {
  /** SQLite only; see SqliteStoreOptions. Default "full". */
  durability?: SqliteDurability;
  /** Apply pending migrations before returning. Default true. */
  migrate?: boolean;
}

/**
 * The store a URL names:
 *   sqlite:/abs/file.db, sqlite:///abs/file.db, sqlite:rel/file.db, sqlite::memory:
 *   /abs/file.db, rel/file.db, :memory:          (a plain path means SQLite)
 *   postgres://..., postgresql://...              (issue 6; refused for now)
 */
export async function openStore(url: string, opts: OpenStoreOptions = {}): Promise<Store> {
  const target = parseStoreUrl(url);
  const store = new SqliteStore({ path: target.path, durability: opts.durability ?? "full" });
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

export type StoreTarget = { kind: "sqlite"; path: string };

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
    throw invalid("PostgreSQL stores are not yet supported; use sqlite:/path/to/mayfly.db");
  }
  throw invalid(`unknown store URL scheme "${scheme}:"; expected sqlite: or a file path`);
}
