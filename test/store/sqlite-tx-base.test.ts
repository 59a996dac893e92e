import Database from "better-sqlite3";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { MayflyError } from "../../src/errors/index.js";
import { type Row, SqliteTxBase } from "../../src/store/sqlite/tx-base.js";

// SqliteTxBase reads rows through the statements' raw mode and builds each row object
// itself: the rows must be exactly what better-sqlite3's default mode gives.

class Probe extends SqliteTxBase {
  one(sql: string, ...params: unknown[]): Row | undefined {
    return this.get("probe", sql, params);
  }
  many(sql: string, ...params: unknown[]): Row[] {
    return this.all("probe", sql, params);
  }
  write(sql: string, ...params: unknown[]): number {
    return this.run("probe", sql, params).changes;
  }
}

function codeOf(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof MayflyError) return e.code;
    throw e;
  }
  throw new Error("did not throw");
}

let db: Database.Database;
let probe: Probe;
beforeEach(() => {
  db = new Database(":memory:");
  db.exec(
    "CREATE TABLE t (id TEXT PRIMARY KEY, n BIGINT, b BLOB, x TEXT);" +
      "INSERT INTO t VALUES ('a', 1, x'0102', NULL), ('b', 9007199254740991, NULL, 'é');",
  );
  const cache = new Map<string, Database.Statement>();
  probe = new Probe((sql) => {
    let s = cache.get(sql);
    if (!s) {
      s = db.prepare(sql);
      cache.set(sql, s);
    }
    return s;
  });
});
afterEach(() => db.close());

describe("SqliteTxBase rows", () => {
  it("gives the rows better-sqlite3's default mode gives, for get and all", () => {
    const one = "SELECT id, n, b, x FROM t WHERE id = ?";
    const many = "SELECT id, n, b, x FROM t ORDER BY id";
    for (let i = 0; i < 3; i++) {
      // Repeated: the first call compiles the row, later ones reuse it.
      expect(probe.one(one, "a")).toEqual(db.prepare(one).get("a"));
      expect(probe.one(one, "b")).toEqual(db.prepare(one).get("b"));
      expect(probe.one(one, "zz")).toBeUndefined();
      expect(probe.many(many)).toEqual(db.prepare(many).all());
    }
    expect(probe.one(one, "a")?.b).toEqual(Buffer.from([1, 2]));
    expect(Object.keys(probe.one(one, "a")!)).toEqual(["id", "n", "b", "x"]);
    expect(probe.many("SELECT id FROM t WHERE id > 'z'")).toEqual([]);
  });

  it("keeps the last of duplicate column names, and any name as an own property", () => {
    const sql = `SELECT 1 AS k, 2 AS k, 4 AS "a""b", 5 AS "" FROM t LIMIT 1`;
    expect(probe.one(sql)).toEqual(db.prepare(sql).get());
    expect(probe.one(sql)).toEqual({ k: 2, 'a"b': 4, "": 5 });
    // The default mode would hand "__proto__" to the prototype setter; here it is data.
    const row = probe.one(`SELECT 3 AS "__proto__" FROM t LIMIT 1`);
    expect(Object.getPrototypeOf(row)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(row, "__proto__")?.value).toBe(3);
  });

  it("runs writes, maps driver errors and refuses use after the transaction ended", () => {
    expect(probe.write("UPDATE t SET n = ? WHERE id = ?", 2, "a")).toBe(1);
    expect(probe.one("SELECT n FROM t WHERE id = ?", "a")).toEqual({ n: 2 });
    expect(codeOf(() => probe.write("INSERT INTO t (id) VALUES (?)", "a"))).toBe("store.conflict");
    expect(codeOf(() => probe.one("SELECT nope FROM t"))).toBe("internal.error");
    probe.end();
    for (const f of [
      () => probe.one("SELECT 1"),
      () => probe.many("SELECT 1"),
      () => probe.write("DELETE FROM t"),
    ]) {
      expect(f).toThrow(/probe: the transaction has already ended/);
    }
    expect(db.prepare("SELECT COUNT(*) AS c FROM t").get()).toEqual({ c: 2 });
  });
});
