import { copyFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { auditHash } from "../../src/audit/chain.js";
import { type AuditVerifyOptions, assertAuditChain, verifyAuditChain } from "../../src/audit/verify.js";
import { isMayflyError } from "../../src/errors/index.js";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import type { AuditEvent } from "../../src/store/types.js";
import { buildLog, tempDir } from "./audit-fixtures.js";

// Tampering the way an attacker with the database file would: plain SQL on the file,
// behind the store's back. Each case works on a fresh copy of one 30-event log.

const dir = tempDir();
const pristine = join(dir, "pristine.db");
let events: AuditEvent[] = [];
let copies = 0;

beforeAll(async () => {
  events = await buildLog(pristine, 30);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const COLS = "ts, type, decision, code, actor, subject, data, prev_hash, hash";

/** Copies the pristine log, applies `sql` to the copy, and verifies it. */
async function tamperAndVerify(tamper: (db: Database.Database) => void, opts: AuditVerifyOptions = {}) {
  const path = join(dir, `copy-${++copies}.db`);
  copyFileSync(pristine, path);
  const db = new Database(path);
  tamper(db);
  db.close();
  const store = new SqliteStore({ path });
  try {
    return await verifyAuditChain(store, opts);
  } finally {
    await store.close();
  }
}

const exec = (sql: string) => (db: Database.Database) => db.exec(sql);

function swapRows(a: number, b: number) {
  return (db: Database.Database) => {
    const get = db.prepare(`SELECT ${COLS} FROM audit_events WHERE seq = ?`);
    const ra = get.get(a) as Record<string, unknown>;
    const rb = get.get(b) as Record<string, unknown>;
    const set = db.prepare(
      "UPDATE audit_events SET ts = @ts, type = @type, decision = @decision, code = @code, actor = @actor, " +
        "subject = @subject, data = @data, prev_hash = @prev_hash, hash = @hash WHERE seq = @seq",
    );
    set.run({ ...rb, seq: a });
    set.run({ ...ra, seq: b });
  };
}

describe("verifyAuditChain on a tampered log", () => {
  it("passes the untouched log", async () => {
    expect(await tamperAndVerify(() => {})).toMatchObject({ ok: true, count: 30, headSeq: 30 });
  });

  it.each([
    ["data", "UPDATE audit_events SET data = replace(data, '\"i\":10', '\"i\":11') WHERE seq = 10", 10],
    ["decision deny -> allow", "UPDATE audit_events SET decision = 'allow', code = NULL WHERE seq = 12", 12],
    ["decision only", "UPDATE audit_events SET decision = 'allow' WHERE seq = 14", 14],
    ["timestamp", "UPDATE audit_events SET ts = ts + 1 WHERE seq = 5", 5],
    ["type", "UPDATE audit_events SET type = 'ca.init' WHERE seq = 1", 1],
    ["code", "UPDATE audit_events SET code = 'agent.inactive' WHERE seq = 2", 2],
    ["actor", "UPDATE audit_events SET actor = 'cli' WHERE seq = 29", 29],
    ["subject", "UPDATE audit_events SET subject = 'agent:other' WHERE seq = 30", 30],
    ["data (replaced wholesale)", "UPDATE audit_events SET data = '{\"x\":1}' WHERE seq = 17", 17],
  ])("locates an altered %s", async (_what, sql, seq) => {
    const r = await tamperAndVerify(exec(sql));
    expect(r).toMatchObject({ ok: false, firstBadSeq: seq, reason: "hash_mismatch", count: seq - 1 });
  });

  it("is not fooled by re-serialised but equal data", async () => {
    // Rewriting data with other key order and whitespace keeps its meaning, and so its hash.
    const r = await tamperAndVerify((db) => {
      const row = db.prepare("SELECT data FROM audit_events WHERE seq = 8").get() as { data: string };
      const parsed = JSON.parse(row.data) as Record<string, unknown>;
      const reordered = Object.fromEntries(Object.entries(parsed).reverse());
      db.prepare("UPDATE audit_events SET data = ? WHERE seq = 8").run(JSON.stringify(reordered, null, 2));
    });
    expect(r).toMatchObject({ ok: true, count: 30 });
  });

  it.each([
    ["a middle row", "DELETE FROM audit_events WHERE seq = 15", 15],
    ["the first row", "DELETE FROM audit_events WHERE seq = 1", 1],
    ["several rows", "DELETE FROM audit_events WHERE seq BETWEEN 7 AND 9", 7],
  ])("locates a removed %s as a seq gap", async (_what, sql, seq) => {
    const r = await tamperAndVerify(exec(sql));
    expect(r).toMatchObject({ ok: false, firstBadSeq: seq, reason: "seq_gap", count: seq - 1 });
  });

  it("locates a removed row even when the rest is renumbered to close the gap", async () => {
    const r = await tamperAndVerify(
      exec("DELETE FROM audit_events WHERE seq = 15; UPDATE audit_events SET seq = seq - 1 WHERE seq > 15"),
    );
    expect(r).toMatchObject({ ok: false, firstBadSeq: 15, reason: "hash_mismatch" });
  });

  it("locates two rows whose contents were swapped", async () => {
    const r = await tamperAndVerify(swapRows(20, 21));
    expect(r).toMatchObject({ ok: false, firstBadSeq: 20, reason: "hash_mismatch", count: 19 });
  });

  it("locates two rows whose seq values were swapped", async () => {
    const r = await tamperAndVerify(
      exec(
        "UPDATE audit_events SET seq = 1000 WHERE seq = 20; UPDATE audit_events SET seq = 20 WHERE seq = 21; " +
          "UPDATE audit_events SET seq = 21 WHERE seq = 1000",
      ),
    );
    expect(r).toMatchObject({ ok: false, firstBadSeq: 20, reason: "hash_mismatch" });
  });

  it("detects a row rewritten with a recomputed hash at the next link", async () => {
    const r = await tamperAndVerify((db) => {
      const forged = { ...events[9]!, decision: "allow" as const, code: null };
      db.prepare("UPDATE audit_events SET decision = 'allow', code = NULL, hash = ? WHERE seq = 10").run(
        auditHash(forged),
      );
    });
    expect(r).toMatchObject({ ok: false, firstBadSeq: 11, reason: "prev_mismatch", count: 10 });
  });

  it("names an unreadable row, and judges the rows before it in the same page first", async () => {
    const unreadable = await tamperAndVerify(
      exec("UPDATE audit_events SET data = '{not json' WHERE seq = 9"),
    );
    expect(unreadable).toMatchObject({ ok: false, firstBadSeq: 9, reason: "unreadable", count: 8 });
    const earlier = await tamperAndVerify(
      exec(
        "UPDATE audit_events SET data = '{not json' WHERE seq = 9; UPDATE audit_events SET ts = 0 WHERE seq = 4",
      ),
    );
    expect(earlier).toMatchObject({ ok: false, firstBadSeq: 4, reason: "hash_mismatch" });
    const gapBefore = await tamperAndVerify(
      exec(
        "UPDATE audit_events SET data = '{not json' WHERE seq = 9; DELETE FROM audit_events WHERE seq = 6",
      ),
    );
    expect(gapBefore).toMatchObject({ ok: false, firstBadSeq: 6, reason: "seq_gap" });
  });

  describe("truncation, which needs an anchor", () => {
    it("cannot see a cut tail without one (the remaining prefix is a valid chain)", async () => {
      const r = await tamperAndVerify(exec("DELETE FROM audit_events WHERE seq > 27"));
      expect(r).toMatchObject({ ok: true, count: 27 });
    });

    it("detects it against an expected head", async () => {
      const expectedHead = { seq: 30, hash: events[29]!.hash };
      const r = await tamperAndVerify(exec("DELETE FROM audit_events WHERE seq > 27"), { expectedHead });
      expect(r).toMatchObject({ ok: false, firstBadSeq: 28, reason: "truncated", count: 27 });
      const all = await tamperAndVerify(exec("DELETE FROM audit_events"), { expectedHead });
      expect(all).toMatchObject({ ok: false, firstBadSeq: 1, reason: "truncated", count: 0 });
    });

    it("detects a history rewritten consistently up to the anchor", async () => {
      // Re-hash from row 10 on: the chain verifies on its own, but no longer ends in the anchored hash.
      const rewrite = (db: Database.Database) => {
        let prev = events[8]!.hash;
        for (const e of events.slice(9)) {
          const forged = { ...e, data: { ...e.data, forged: true }, prevHash: prev };
          const hash = auditHash(forged);
          db.prepare("UPDATE audit_events SET data = ?, prev_hash = ?, hash = ? WHERE seq = ?").run(
            JSON.stringify(forged.data),
            prev,
            hash,
            e.seq,
          );
          prev = hash;
        }
      };
      expect(await tamperAndVerify(rewrite)).toMatchObject({ ok: true, count: 30 });
      const anchored = await tamperAndVerify(rewrite, { expectedHead: { seq: 30, hash: events[29]!.hash } });
      expect(anchored).toMatchObject({ ok: false, firstBadSeq: 30, reason: "head_mismatch" });
    });
  });

  it("assertAuditChain throws audit.chain_broken naming the first bad event", async () => {
    const path = join(dir, "assert.db");
    copyFileSync(pristine, path);
    const db = new Database(path);
    db.exec("DELETE FROM audit_events WHERE seq = 3");
    db.close();
    const store = new SqliteStore({ path });
    const err = await assertAuditChain(store).catch((e: unknown) => e);
    await store.close();
    expect(isMayflyError(err) && err.code).toBe("audit.chain_broken");
    expect(isMayflyError(err) && err.extra).toMatchObject({ firstBadSeq: 3, reason: "seq_gap" });
  });
});
