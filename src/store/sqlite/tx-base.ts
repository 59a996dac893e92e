import type BetterSqlite3 from "better-sqlite3";
import { MayflyError } from "../../errors/index.js";
import { mapSqliteError } from "./errors.js";

export type Row = Record<string, unknown>;
/**
 * The connection's cached statement for `sql`. SqliteTxBase switches the statements it
 * reads rows from to raw mode (arrays) the first time it sees them; nothing else reads
 * rows through these statements.
 */
export type Prepare = (sql: string) => BetterSqlite3.Statement;

type Shape = (values: unknown[]) => Row;

/** Per statement: builds the row object from the raw row, see shapeOf. */
const shapes = new WeakMap<BetterSqlite3.Statement, Shape>();

/**
 * Rows as better-sqlite3's default mode would give them ({ column: value }), built from
 * the statement's raw mode instead. The default mode builds every row through V8's
 * API, one property at a time, with each column name interned again for each row;
 * that was most of the CPU of a small read. Here the row is an object literal of the
 * statement's columns, compiled once per statement: every row of a statement has one
 * shape, which also keeps the rows.ts mappers that read it monomorphic. Duplicate column
 * names resolve as before (the last one wins); a column named "__proto__", which the
 * default mode would hand to the prototype setter, is an own property.
 */
function shapeOf(s: BetterSqlite3.Statement): Shape {
  let shape = shapes.get(s);
  if (!shape) {
    // Column names come from our own SQL; JSON.stringify quotes them as keys either way.
    // "__proto__" as a plain key would set the prototype: computed keys define it instead.
    const members = s
      .columns()
      .map((c, i) => `${c.name === "__proto__" ? '["__proto__"]' : JSON.stringify(c.name)}: v[${i}]`);
    shape = new Function("v", `return { ${members.join(", ")} };`) as Shape;
    s.raw(true);
    shapes.set(s, shape);
  }
  return shape;
}

/**
 * What every SqliteTx method goes through: the cached statement, driver errors mapped
 * to MayflyErrors, and a refusal once the transaction has ended, so a callback that
 * leaks its handle cannot write outside its transaction.
 */
export class SqliteTxBase {
  private live = true;

  constructor(private readonly prepare: Prepare) {}

  end(): void {
    this.live = false;
  }

  protected run(what: string, sql: string, params: unknown[]): BetterSqlite3.RunResult {
    if (!this.live) throw ended(what);
    try {
      return this.prepare(sql).run(...params);
    } catch (e) {
      throw mapSqliteError(e, what);
    }
  }
  protected get(what: string, sql: string, params: unknown[]): Row | undefined {
    if (!this.live) throw ended(what);
    try {
      const s = this.prepare(sql);
      const shape = shapeOf(s);
      const values = s.get(...params) as unknown[] | undefined;
      return values === undefined ? undefined : shape(values);
    } catch (e) {
      throw mapSqliteError(e, what);
    }
  }
  protected all(what: string, sql: string, params: unknown[]): Row[] {
    if (!this.live) throw ended(what);
    try {
      const s = this.prepare(sql);
      const shape = shapeOf(s);
      return (s.all(...params) as unknown[][]).map(shape);
    } catch (e) {
      throw mapSqliteError(e, what);
    }
  }
  /** Updates by id must hit a row: a status change to nothing is a caller bug, not a no-op. */
  protected mustChange(r: BetterSqlite3.RunResult, err: () => MayflyError): void {
    if (r.changes === 0) throw err();
  }
}

function ended(what: string): MayflyError {
  return new MayflyError("internal.error", `${what}: the transaction has already ended`);
}
