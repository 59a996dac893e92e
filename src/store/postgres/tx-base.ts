import type { PoolClient, QueryResult } from "pg";
import { MayflyError } from "../../errors/index.js";
import { isAuditSeqConflict, isRetryable, mapPgError } from "./errors.js";

export type Row = Record<string, unknown>;

// Statements are written with SQLite's "?" placeholders, so the two backends' SQL reads
// the same; each text is turned into PostgreSQL's $1, $2, ... once and given a name, so
// pg prepares it once per connection. None of our statements has a "?" inside a literal.
const prepared = new Map<string, { name: string; text: string }>();
function statement(sql: string): { name: string; text: string } {
  let s = prepared.get(sql);
  if (!s) {
    let n = 0;
    s = { name: `mayfly_${prepared.size + 1}`, text: sql.replace(/\?/g, () => `$${++n}`) };
    prepared.set(sql, s);
  }
  return s;
}

/**
 * What every PostgresTx method goes through: the named statement, driver errors mapped
 * to MayflyErrors, and a refusal once the transaction has ended, so a callback that
 * leaks its handle cannot write outside its transaction. A retryable failure (deadlock,
 * serialization failure) is remembered, whatever the callback makes of the error, so
 * tx() knows to run the callback again. After any failure PostgreSQL refuses further
 * statements in the transaction (25P02); callers never continue after a store error.
 */
export class PgTxBase {
  private live = true;
  retryable = false;
  /** The first statement error, mapped; PostgreSQL has aborted the transaction since. */
  failure: unknown = null;

  /**
   * `retryAuditSeq`: treat a duplicate audit seq as retryable (auditLock "optimistic",
   * where two appends that read the same head race for the next seq).
   */
  constructor(
    private readonly client: PoolClient,
    private readonly retryAuditSeq = false,
  ) {}

  end(): void {
    this.live = false;
  }

  protected async query(what: string, sql: string, params: unknown[]): Promise<QueryResult<Row>> {
    if (!this.live) throw new MayflyError("internal.error", `${what}: the transaction has already ended`);
    const { name, text } = statement(sql);
    try {
      return await this.client.query<Row>({ name, text, values: params });
    } catch (e) {
      if (isRetryable(e) || (this.retryAuditSeq && isAuditSeqConflict(e))) this.retryable = true;
      const mapped = mapPgError(e, what);
      this.failure ??= mapped;
      throw mapped;
    }
  }
  /**
   * Several parameterless statements in one round trip (the simple query protocol),
   * each with its own snapshot under READ COMMITTED; the rows of the last one.
   */
  protected async batch(what: string, sql: string): Promise<Row[]> {
    if (!this.live) throw new MayflyError("internal.error", `${what}: the transaction has already ended`);
    try {
      const results = (await this.client.query<Row>(sql)) as unknown as QueryResult<Row> | QueryResult<Row>[];
      return (Array.isArray(results) ? results.at(-1)?.rows : results.rows) ?? [];
    } catch (e) {
      if (isRetryable(e)) this.retryable = true;
      const mapped = mapPgError(e, what);
      this.failure ??= mapped;
      throw mapped;
    }
  }
  protected async run(what: string, sql: string, params: unknown[]): Promise<number> {
    return (await this.query(what, sql, params)).rowCount ?? 0;
  }
  protected async get(what: string, sql: string, params: unknown[]): Promise<Row | undefined> {
    return (await this.query(what, sql, params)).rows[0];
  }
  protected async all(what: string, sql: string, params: unknown[]): Promise<Row[]> {
    return (await this.query(what, sql, params)).rows;
  }
  /** Updates by id must hit a row: a status change to nothing is a caller bug, not a no-op. */
  protected mustChange(changes: number, err: () => MayflyError): void {
    if (changes === 0) throw err();
  }
}
