import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import { bytes, certificate, seedAgent } from "./fixtures.js";

// Group commit: transactions queued together share one BEGIN IMMEDIATE ... COMMIT, each
// in its own savepoint. Each must keep its own outcome, see the ones before it, and
// resolve only once the shared COMMIT has made it visible to every other connection.

const dir = mkdtempSync(join(tmpdir(), "mayfly-group-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

async function fresh(): Promise<{ store: SqliteStore; path: string }> {
  const path = join(dir, `g${++n}.db`);
  const store = new SqliteStore({ path });
  await store.migrate();
  await store.tx((tx) => seedAgent(tx, "a1"));
  return { store, path };
}

/** Counts BEGINs on the store's connection. */
function countBegins(store: SqliteStore): () => number {
  const s = store as unknown as { control: (sql: string) => void };
  const control = s.control.bind(store);
  let begins = 0;
  s.control = (sql: string) => {
    if (sql.startsWith("BEGIN")) begins++;
    control(sql);
  };
  return () => begins;
}

describe("SqliteStore group commit", () => {
  it("commits concurrent transactions in shared groups; a failing one rolls back alone", async () => {
    const { store } = await fresh();
    const begins = countBegins(store);
    const outcomes = await Promise.allSettled(
      Array.from({ length: 60 }, (_, i) =>
        store.tx(async (tx) => {
          await tx.insertCertificate(certificate(`s${i}`, "a1"));
          if (i % 7 === 3) throw new Error(`boom ${i}`);
          return i;
        }),
      ),
    );
    const failed = outcomes.flatMap((o, i) => (o.status === "rejected" ? [i] : []));
    expect(failed).toEqual([3, 10, 17, 24, 31, 38, 45, 52, 59]);
    outcomes.forEach((o, i) => {
      if (o.status === "fulfilled") expect(o.value).toBe(i);
      else expect(String(o.reason)).toContain(`boom ${i}`);
    });
    const kept = await store.tx((tx) => tx.listCertificatesByAgent("a1"));
    expect(kept.map((c) => c.serial.toString("hex")).sort()).toEqual(
      outcomes
        .flatMap((o, i) => (o.status === "fulfilled" ? [bytes(`serial-s${i}`, 16).toString("hex")] : []))
        .sort(),
    );
    // 60 transactions queued at once ran in far fewer BEGIN ... COMMITs.
    expect(begins()).toBeGreaterThan(0);
    expect(begins()).toBeLessThan(10);
    await store.close();
  });

  it("lets each transaction see the ones committed before it in its group", async () => {
    const { store } = await fresh();
    const seen = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        store.tx(async (tx) => {
          const before = await tx.countCertificates();
          await tx.insertCertificate(certificate(`s${i}`, "a1"));
          return before;
        }),
      ),
    );
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => i));
    await store.close();
  });

  it("resolves no transaction before its commit is visible to another connection", async () => {
    const { store, path } = await fresh();
    const other = new Database(path, { readonly: true });
    const find = other.prepare("SELECT COUNT(*) AS n FROM certificates WHERE serial = ?");
    const visibleAtResolve = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store
          .tx((tx) => tx.insertCertificate(certificate(`s${i}`, "a1")))
          .then(() => (find.get(bytes(`serial-s${i}`, 16)) as { n: number }).n),
      ),
    );
    expect(visibleAtResolve).toEqual(Array.from({ length: 50 }, () => 1));
    other.close();
    await store.close();
  });

  it("rolls back alone a transaction whose savepoint journaled far more than 64 KiB of pages", async () => {
    const { store } = await fresh();
    // ~400 existing certificates over many pages: deleting them all journals every page.
    await store.tx(async (tx) => {
      for (let i = 0; i < 400; i++) await tx.insertCertificate(certificate(`old${i}`, "a1", { notAfter: 1 }));
    });
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const first = store.tx(() => held);
    const group = Promise.allSettled([
      store.tx((tx) => tx.insertCertificate(certificate("before", "a1"))),
      store.tx(async (tx) => {
        expect(await tx.deleteCertificatesExpiredBefore(2, 1000)).toBe(400);
        throw new Error("boom");
      }),
      store.tx(async (tx) => {
        await tx.insertCertificate(certificate("after", "a1"));
        return tx.countCertificates();
      }),
    ]);
    release();
    await first;
    const results = await group;
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    // The third saw the certificates the second deleted and rolled back.
    expect((results[2] as PromiseFulfilledResult<number>).value).toBe(402);
    const kept = await store.read((tx) => tx.listCertificatesByAgent("a1"));
    expect(kept).toHaveLength(402);
    expect(kept.find((c) => c.serial.equals(bytes("serial-old399", 16)))?.der).toEqual(
      certificate("old399", "a1").der,
    );
    await store.close();
  });

  it("fails every transaction of a group whose COMMIT fails, and keeps none of them", async () => {
    const { store } = await fresh();
    const db = (store as unknown as { db: Database.Database }).db;
    // A first transaction holds the connection so the next three queue up as one group.
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const first = store.tx(() => held);
    const group = Promise.allSettled([
      store.tx((tx) => tx.insertCertificate(certificate("ok-1", "a1"))),
      store.tx(async (tx) => {
        // A deferred foreign-key violation is only detected at COMMIT, failing the group.
        db.pragma("defer_foreign_keys = ON");
        await tx.insertCertificate(certificate("orphan", "nobody"));
      }),
      store.tx((tx) => tx.insertCertificate(certificate("ok-2", "a1"))),
    ]);
    release();
    await first;
    const results = await group;
    expect(results.map((r) => r.status)).toEqual(["rejected", "rejected", "rejected"]);
    expect(await store.tx((tx) => tx.countCertificates())).toBe(0);
    // The store goes on working after a failed group.
    await store.tx((tx) => tx.insertCertificate(certificate("after", "a1")));
    expect(await store.tx((tx) => tx.countCertificates())).toBe(1);
    await store.close();
  });

  it("durability full: resolves only after an fsync of the WAL that began after its COMMIT", async () => {
    const path = join(dir, `g${++n}.db`);
    const syncs: { visible: number; done: (err: Error | null) => void }[] = [];
    let other: Database.Database | null = null;
    const store = new SqliteStore({
      path,
      syncWal: (_fd, done) => {
        // At fsync time the commit is already in the WAL, visible to another connection.
        const n = other
          ? (other.prepare("SELECT COUNT(*) AS n FROM certificates").get() as { n: number }).n
          : -1;
        syncs.push({ visible: n, done });
      },
    });
    const released = async () => {
      while (syncs.length > 0) syncs.shift()!.done(null);
      await new Promise((r) => setImmediate(r));
    };
    const migrated = store.migrate();
    while (syncs.length === 0) await new Promise((r) => setImmediate(r));
    await released();
    await migrated;
    const seeded = store.tx((tx) => seedAgent(tx, "a1"));
    while (syncs.length === 0) await new Promise((r) => setImmediate(r));
    await released();
    await seeded;
    other = new Database(path, { readonly: true });

    let resolved = 0;
    const first = store.tx((tx) => tx.insertCertificate(certificate("s0", "a1"))).then(() => resolved++);
    while (syncs.length === 0) await new Promise((r) => setImmediate(r));
    // Committed and visible, but not yet durable: not resolved.
    expect(syncs[0]!.visible).toBe(1);
    const more = Array.from({ length: 5 }, (_, i) =>
      store.tx((tx) => tx.insertCertificate(certificate(`s${i + 1}`, "a1"))).then(() => resolved++),
    );
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    expect(resolved).toBe(0);
    // The five committed while the first fsync ran wait for the next one, shared.
    syncs.shift()!.done(null);
    await first;
    expect(resolved).toBe(1);
    while (syncs.length === 0) await new Promise((r) => setImmediate(r));
    expect(syncs).toHaveLength(1);
    expect(syncs[0]!.visible).toBe(6);
    expect(resolved).toBe(1);
    syncs.shift()!.done(null);
    await Promise.all(more);
    expect(resolved).toBe(6);
    const closing = store.close();
    await released();
    await closing;
    other.close();
  });

  it("durability full: starts the transactions queued during an fsync after it ends, as one group", async () => {
    const path = join(dir, `g${++n}.db`);
    const held: ((err: Error | null) => void)[] = [];
    let hold = false;
    const store = new SqliteStore({
      path,
      syncWal: (_fd, done) => (hold ? held.push(done) : setImmediate(() => done(null))),
    });
    await store.migrate();
    await store.tx((tx) => seedAgent(tx, "a1"));
    const begins = countBegins(store);
    hold = true;
    const first = store.tx((tx) => tx.insertCertificate(certificate("s0", "a1")));
    while (held.length === 0) await new Promise((r) => setImmediate(r));
    let started = 0;
    const more = Array.from({ length: 8 }, (_, i) =>
      store.tx(async (tx) => {
        started++;
        await tx.insertCertificate(certificate(`s${i + 1}`, "a1"));
        return tx.countCertificates();
      }),
    );
    for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
    // They could not resolve before this fsync ends: they have not even started.
    expect(started).toBe(0);
    expect(begins()).toBe(1);
    held.shift()!(null);
    await first;
    while (held.length === 0) await new Promise((r) => setImmediate(r));
    expect(started).toBe(8);
    expect(begins()).toBe(2);
    hold = false;
    held.shift()!(null);
    expect(await Promise.all(more)).toEqual([2, 3, 4, 5, 6, 7, 8, 9]);
    await store.close();
  });

  it("durability full: a failed fsync fails the transactions it was to make durable", async () => {
    let fail = false;
    const path = join(dir, `g${++n}.db`);
    const store = new SqliteStore({
      path,
      syncWal: (_fd, done) => setImmediate(() => done(fail ? new Error("EIO") : null)),
    });
    await store.migrate();
    await store.tx((tx) => seedAgent(tx, "a1"));
    fail = true;
    await expect(store.tx((tx) => tx.insertCertificate(certificate("s1", "a1")))).rejects.toMatchObject({
      code: "internal.error",
    });
    fail = false;
    await store.tx((tx) => tx.insertCertificate(certificate("s2", "a1")));
    await store.close();
  });

  it("waits for another connection's write lock without blocking the event loop", async () => {
    const { store: a, path } = await fresh();
    const b = new SqliteStore({ path, busyTimeoutMs: 2000 });
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const holding = a.tx(async (tx) => {
      await tx.insertCertificate(certificate("a", "a1"));
      await held;
    });
    await new Promise((r) => setImmediate(r));
    const waiting = b.tx((tx) => tx.insertCertificate(certificate("b", "a1")));
    // The loop keeps turning while b waits for a's lock (a blocking busy handler would stall it).
    let turns = 0;
    const started = Date.now();
    while (Date.now() - started < 100) {
      await new Promise((r) => setTimeout(r, 5));
      turns++;
    }
    expect(turns).toBeGreaterThan(5);
    release();
    await holding;
    await waiting;
    expect(await b.tx((tx) => tx.countCertificates())).toBe(2);
    await b.close();
    await a.close();
  });

  it("gives up on another connection's write lock after busyTimeoutMs with store.conflict", async () => {
    const { store: a, path } = await fresh();
    const b = new SqliteStore({ path, busyTimeoutMs: 50 });
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    const holding = a.tx(async (tx) => {
      await tx.insertCertificate(certificate("a", "a1"));
      await held;
    });
    await new Promise((r) => setImmediate(r));
    await expect(b.tx((tx) => tx.insertCertificate(certificate("b", "a1")))).rejects.toMatchObject({
      code: "store.conflict",
    });
    release();
    await holding;
    await b.close();
    await a.close();
  });

  it("runs migrate and close in queue order around groups", async () => {
    const { store } = await fresh();
    const writes = Array.from({ length: 10 }, (_, i) =>
      store.tx((tx) => tx.insertCertificate(certificate(`s${i}`, "a1"))),
    );
    const closing = store.close();
    const late = store.tx((tx) => tx.countCertificates());
    await Promise.all(writes);
    await closing;
    await expect(late).rejects.toThrow(/closed/);
  });
});
