import type BetterSqlite3 from "better-sqlite3";
import { MayflyError } from "../../errors/index.js";
import { mapSqliteError } from "./errors.js";

export type Row = Record<string, unknown>;
export type Prepare = (sql: string) => BetterSqlite3.Statement;

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
    return this.guard(what, () => this.prepare(sql).run(...params));
  }
  protected get(what: string, sql: string, params: unknown[]): Row | undefined {
    return this.guard(what, () => this.prepare(sql).get(...params) as Row | undefined);
  }
  protected all(what: string, sql: string, params: unknown[]): Row[] {
    return this.guard(what, () => this.prepare(sql).all(...params) as Row[]);
  }
  private guard<T>(what: string, f: () => T): T {
    if (!this.live) throw new MayflyError("internal.error", `${what}: the transaction has already ended`);
    try {
      return f();
    } catch (e) {
      throw mapSqliteError(e, what);
    }
  }
  /** Updates by id must hit a row: a status change to nothing is a caller bug, not a no-op. */
  protected mustChange(r: BetterSqlite3.RunResult, err: () => MayflyError): void {
    if (r.changes === 0) throw err();
  }
}
