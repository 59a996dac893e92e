import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { FactsCache } from "../../src/store/sqlite/facts-cache.js";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import { binding, seedAgent } from "./fixtures.js";

// The SQLite facts cache (facts-cache.ts, migration 0010). The conformance suite proves
// getIssuanceFacts always equals the rows; these prove what that rests on: every column
// an issuance reads moves facts_version, the one that must not (last_issued_at) does
// not, a change made through another connection is seen, and the cache really serves
// entries (so the triggers are what keep it right).

const dir = mkdtempSync(join(tmpdir(), "mayfly-facts-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = () => join(dir, `f${++n}.db`);

async function seeded(path: string, cacheSize?: number): Promise<SqliteStore> {
  const s = new SqliteStore({ path, factsCacheSize: cacheSize });
  await s.migrate();
  await s.tx(async (tx) => {
    const a = await seedAgent(tx, "a1");
    await tx.upsertBinding(binding("a1", a.ownerId));
  });
  return s;
}

const version = (db: Database.Database) =>
  (db.prepare("SELECT v FROM facts_version WHERE id = 1").get() as { v: string }).v;

describe("SQLite issuance-facts cache", () => {
  it("moves facts_version on every column of the fact tables but agents.last_issued_at", async () => {
    const path = file();
    await (await seeded(path)).close();
    const db = new Database(path);
    const keys: Record<string, string> = {
      owners: "id = 'o-a1'",
      devices: "id = 'd-a1'",
      bindings: "agent_id = 'a1'",
      agents: "id = 'a1'",
    };
    for (const [table, where] of Object.entries(keys)) {
      const cols = (db.prepare(`PRAGMA table_info(${table})`).all() as { name: string }[]).map((c) => c.name);
      expect(cols.length).toBeGreaterThan(3);
      for (const c of cols) {
        const before = version(db);
        // Setting a column to itself still fires an UPDATE (OF col) trigger.
        const r = db.prepare(`UPDATE ${table} SET ${c} = ${c} WHERE ${where}`).run();
        expect(r.changes).toBe(1);
        const moved = version(db) !== before;
        expect({ table, column: c, moved }).toEqual({
          table,
          column: c,
          moved: !(table === "agents" && c === "last_issued_at"),
        });
      }
    }
    // Inserts and deletes move it too.
    let before = version(db);
    db.prepare("DELETE FROM bindings WHERE agent_id = 'a1'").run();
    expect(version(db)).not.toBe(before);
    before = version(db);
    db.prepare(
      "INSERT INTO owners (id, issuer, subject, status, created_at, updated_at) VALUES ('o-x', 'i', 's', 'active', 1, 1)",
    ).run();
    expect(version(db)).not.toBe(before);
    db.close();
  });

  it("sees a change committed through another connection", async () => {
    const path = file();
    const s = await seeded(path);
    expect((await s.read((tx) => tx.getIssuanceFacts("a1")))!.owner!.status).toBe("active");
    expect((await s.tx((tx) => tx.getIssuanceFacts("a1")))!.owner!.status).toBe("active");
    const other = new Database(path);
    other.prepare("UPDATE owners SET status = 'deprovisioned' WHERE id = 'o-a1'").run();
    other.close();
    expect((await s.readIssuanceFacts("a1"))!.owner!.status).toBe("deprovisioned");
    expect((await s.read((tx) => tx.getIssuanceFacts("a1")))!.owner!.status).toBe("deprovisioned");
    expect((await s.tx((tx) => tx.getIssuanceFacts("a1")))!.owner!.status).toBe("deprovisioned");
    await s.close();
  });

  it("serves cached facts while facts_version stands (shown by a write that bypasses the trigger)", async () => {
    const path = file();
    const cached = await seeded(path);
    const uncached = new SqliteStore({ path, factsCacheSize: 0 });
    await cached.read((tx) => tx.getIssuanceFacts("a1"));
    const db = new Database(path);
    db.exec("DROP TRIGGER owners_facts_update");
    db.prepare("UPDATE owners SET status = 'suspended' WHERE id = 'o-a1'").run();
    db.close();
    // Without its trigger the change is invisible to the cache: what it serves is the entry.
    expect((await cached.read((tx) => tx.getIssuanceFacts("a1")))!.owner!.status).toBe("active");
    expect((await cached.readIssuanceFacts("a1"))!.owner!.status).toBe("active");
    expect((await uncached.read((tx) => tx.getIssuanceFacts("a1")))!.owner!.status).toBe("suspended");
    expect((await uncached.readIssuanceFacts("a1"))!.owner!.status).toBe("suspended");
    await cached.close();
    await uncached.close();
  });

  it("readIssuanceFacts refuses to nest in a transaction and to run after close", async () => {
    const s = await seeded(file());
    await expect(s.tx(() => s.readIssuanceFacts("a1"))).rejects.toMatchObject({ code: "internal.error" });
    await expect(s.read(() => s.readIssuanceFacts("a1"))).rejects.toMatchObject({ code: "internal.error" });
    expect((await s.readIssuanceFacts("a1"))!.agent.id).toBe("a1");
    await s.close();
    await expect(s.readIssuanceFacts("a1")).rejects.toMatchObject({ code: "internal.error" });
  });

  it("keeps at most its capacity, dropping the least recently used", () => {
    const c = new FactsCache(2);
    const f = (id: string) => ({ agent: { id } }) as never;
    c.set("a", "v1", f("a"));
    c.set("b", "v1", f("b"));
    expect(c.get("a", "v1")).toEqual({ agent: { id: "a" } }); // a is now the most recent
    c.set("c", "v1", f("c"));
    expect(c.size).toBe(2);
    expect(c.get("b", "v1")).toBeUndefined();
    expect(c.get("a", "v1")).toBeDefined();
    expect(c.get("a", "v2")).toBeUndefined(); // another version: a miss, and the entry goes
    expect(c.get("a", "v1")).toBeUndefined();
    expect(() => new FactsCache(0)).toThrow(RangeError);
  });
});
