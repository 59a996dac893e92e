import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { openStore, parseStoreUrl } from "../../src/store/open.js";
import { SQLITE_MIGRATIONS, SqliteStore } from "../../src/store/sqlite/index.js";
import { expectCode, owner } from "./fixtures.js";

// What is particular to the SQLite backend: connection settings, migration history,
// persistence across reopen, and the store URL.

const dir = mkdtempSync(join(tmpdir(), "mayfly-sqlite-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = () => join(dir, `s${++n}.db`);

function pragma(store: SqliteStore, name: string): unknown {
  const db = (store as unknown as { db: Database.Database }).db;
  return db.pragma(name, { simple: true });
}

describe("SqliteStore", () => {
  it("opens in WAL with foreign keys, busy timeout and the chosen durability", async () => {
    const full = new SqliteStore({ path: file() });
    expect(pragma(full, "journal_mode")).toBe("wal");
    // durability full: NORMAL plus the store's own WAL fdatasync per group commit.
    expect(pragma(full, "synchronous")).toBe(1);
    expect(pragma(full, "foreign_keys")).toBe(1);
    expect(pragma(full, "busy_timeout")).toBe(5000);
    // Savepoint sub-journals stay in memory (2 = MEMORY), never a temporary file.
    expect(pragma(full, "temp_store")).toBe(2);
    await full.close();
    const normal = new SqliteStore({ path: file(), durability: "normal", busyTimeoutMs: 50 });
    expect(pragma(normal, "synchronous")).toBe(1); // NORMAL
    expect(pragma(normal, "busy_timeout")).toBe(50);
    await normal.close();
  });

  it("keeps committed data across close and reopen; migrate is recorded once", async () => {
    const path = file();
    const a = new SqliteStore({ path });
    await a.migrate();
    await a.tx((tx) => tx.insertOwner(owner("o1")));
    await a.close();
    const b = new SqliteStore({ path });
    await b.migrate();
    expect(await b.tx((tx) => tx.getOwner("o1"))).toEqual(owner("o1"));
    await b.close();
    const raw = new Database(path, { readonly: true });
    const rows = raw.prepare("SELECT version, name FROM schema_migrations ORDER BY version").all();
    raw.close();
    expect(rows).toEqual(SQLITE_MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
  });

  it("refuses a database migrated by a newer build, or whose applied migration changed", async () => {
    const newer = file();
    await (await openStore(newer)).close();
    const raw = new Database(newer);
    raw.prepare("INSERT INTO schema_migrations (version, name, checksum) VALUES (99, 'future', 'x')").run();
    raw.close();
    await expectCode(openStore(newer), "config.invalid");

    const edited = file();
    await (await openStore(edited)).close();
    const raw2 = new Database(edited);
    raw2.prepare("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 1").run();
    raw2.close();
    await expectCode(openStore(edited), "config.invalid");
  });

  it("refuses a nested transaction instead of deadlocking", async () => {
    const s = new SqliteStore({ path: ":memory:" });
    await s.migrate();
    await expectCode(
      s.tx(() => s.tx(async () => 1)),
      "internal.error",
    );
    // The queue is still usable afterwards.
    expect(await s.tx(async () => "ok")).toBe("ok");
    await s.close();
  });

  it("refuses work after close", async () => {
    const s = new SqliteStore({ path: ":memory:" });
    await s.close();
    await expectCode(
      s.tx(async () => 1),
      "internal.error",
    );
  });

  it("maps an unopenable path to config.invalid", () => {
    expect(() => new SqliteStore({ path: join(dir, "missing", "dir", "x.db") })).toThrow(/config.invalid/);
  });
});

describe("openStore / parseStoreUrl", () => {
  it("reads sqlite URLs and plain paths", () => {
    expect(parseStoreUrl("sqlite:/var/lib/mayfly/m.db")).toEqual({
      kind: "sqlite",
      path: "/var/lib/mayfly/m.db",
    });
    expect(parseStoreUrl("sqlite:///var/lib/m.db")).toEqual({ kind: "sqlite", path: "/var/lib/m.db" });
    expect(parseStoreUrl("sqlite:rel/m.db")).toEqual({ kind: "sqlite", path: "rel/m.db" });
    expect(parseStoreUrl("sqlite::memory:")).toEqual({ kind: "sqlite", path: ":memory:" });
    expect(parseStoreUrl(":memory:")).toEqual({ kind: "sqlite", path: ":memory:" });
    expect(parseStoreUrl("./.mayfly/mayfly.db")).toEqual({ kind: "sqlite", path: "./.mayfly/mayfly.db" });
    expect(parseStoreUrl("C:\\data\\m.db")).toEqual({ kind: "sqlite", path: "C:\\data\\m.db" });
  });

  it("refuses unknown schemes and empty URLs with config.invalid (postgres: URLs: postgres-store.test.ts)", async () => {
    for (const url of ["mysql://h/db", "", "sqlite:"]) {
      await expectCode(openStore(url), "config.invalid");
    }
  });

  it("opens and migrates", async () => {
    const s = await openStore(`sqlite:${file()}`);
    expect(s.kind).toBe("sqlite");
    await s.tx((tx) => tx.insertOwner(owner("o1")));
    await s.close();
  });
});
