import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Worker } from "node:worker_threads";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import { expectCode, owner, seedAgent, T0 } from "./fixtures.js";

// WAL checkpoints run in a worker thread (checkpointer.ts) instead of inside COMMIT, and
// read() runs on a second, read-only connection. What only the SQLite backend can show.

const dir = mkdtempSync(join(tmpdir(), "mayfly-ckpt-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = () => join(dir, `c${++n}.db`);

function internals(store: SqliteStore) {
  return store as unknown as {
    db: Database.Database;
    checkpointer: { worker: Worker } | null;
  };
}

/** About 40 KB of audit rows per call (overflow pages), so the WAL grows fast. */
async function bulk(store: SqliteStore, from: number, txs: number): Promise<void> {
  const pad = "x".repeat(10_000);
  await Promise.all(
    Array.from({ length: txs }, (_, i) =>
      store.tx(async (tx) => {
        for (let k = 0; k < 4; k++) {
          const seq = (from + i) * 4 + k + 1;
          await tx.insertAuditEvent({
            seq,
            ts: T0 + seq,
            type: "test.bulk",
            decision: "info",
            code: null,
            actor: null,
            subject: null,
            data: { pad, seq },
            prevHash: Buffer.alloc(32),
            hash: Buffer.alloc(32, seq % 256),
          });
        }
      }),
    ),
  );
}

describe("SqliteStore checkpoints", () => {
  it("turns SQLite's checkpoint in COMMIT off, and runs a worker only for a WAL", async () => {
    const s = new SqliteStore({ path: file() });
    expect(internals(s).db.pragma("wal_autocheckpoint", { simple: true })).toBe(0);
    expect(internals(s).checkpointer).not.toBeNull();
    await s.close();
    const m = new SqliteStore({ path: ":memory:" });
    expect(internals(m).checkpointer).toBeNull();
    await m.close();
  });

  it("keeps the WAL bounded under sustained writes", async () => {
    const path = file();
    const s = new SqliteStore({ path, checkpointIntervalMs: 5, walRestartBytes: 1024 * 1024 });
    await s.migrate();
    let max = 0;
    // 60 rounds x 16 transactions x ~40 KB: about 40 MB through the WAL.
    for (let r = 0; r < 60; r++) {
      await bulk(s, r * 16, 16);
      max = Math.max(max, statSync(`${path}-wal`).size);
    }
    expect(await s.tx((tx) => tx.listAuditEvents(1, 1))).toHaveLength(1);
    // Without checkpoints the WAL would hold everything (~40 MB); the bound is the
    // restart threshold plus what arrives while a checkpoint runs.
    expect(max).toBeLessThan(12 * 1024 * 1024);
    await s.close();
  }, 60_000);

  it("close() ends the worker after its connection is closed; the data survives reopen", async () => {
    const path = file();
    const s = new SqliteStore({ path, checkpointIntervalMs: 5 });
    await s.migrate();
    await s.tx((tx) => tx.insertOwner(owner("o1")));
    await bulk(s, 0, 8);
    const worker = internals(s).checkpointer!.worker;
    let exited = false;
    worker.once("exit", () => {
      exited = true;
    });
    await s.close();
    expect(exited).toBe(true);
    // The last connection to close checkpointed and removed the WAL: nothing held it open.
    expect(existsSync(`${path}-wal`)).toBe(false);
    const again = new SqliteStore({ path });
    await again.migrate();
    expect(await again.read((tx) => tx.getOwner("o1"))).toEqual(owner("o1"));
    expect(await again.tx((tx) => tx.listAuditEvents(1, 100))).toHaveLength(32);
    await again.close();
  });

  it("falls back to SQLite's own checkpoints if the worker dies", async () => {
    const s = new SqliteStore({ path: file() });
    await s.migrate();
    await internals(s).checkpointer!.worker.terminate();
    expect(internals(s).checkpointer).toBeNull();
    expect(internals(s).db.pragma("wal_autocheckpoint", { simple: true })).toBe(1000);
    await s.tx((tx) => tx.insertOwner(owner("o1")));
    await s.close();
  });
});

describe("SqliteStore fsync per group", () => {
  it("fsyncs a group that wrote (also through RETURNING), not one that only read", async () => {
    let syncs = 0;
    const s = new SqliteStore({
      path: file(),
      syncWal: (_fd, done) => {
        syncs++;
        setImmediate(() => done(null));
      },
    });
    await s.migrate();
    await s.tx((tx) => seedAgent(tx, "a1"));
    syncs = 0;
    await s.tx(async (tx) => {
      await tx.getAgent("a1");
      await tx.listOwners();
    });
    expect(syncs).toBe(0);
    const e = {
      rotationId: "intermediate:aa",
      kind: "intermediate" as const,
      step: "prepared",
      at: T0,
      data: {},
    };
    expect(await s.tx((tx) => tx.appendCaJournal(e))).not.toBeNull();
    expect(syncs).toBe(1);
    await s.tx((tx) => tx.setAgentStatus("a1", "suspended", T0 + 1));
    expect(syncs).toBe(2);
    await s.close();
  });
});

describe("SqliteStore read()", () => {
  it("does not wait for another process's write lock; tx() does", async () => {
    const path = file();
    const s = new SqliteStore({ path, busyTimeoutMs: 100 });
    await s.migrate();
    await s.tx((tx) => tx.insertOwner(owner("o1")));
    const other = new Database(path);
    other.exec("BEGIN IMMEDIATE");
    other.prepare("UPDATE owners SET status = 'suspended' WHERE id = 'o1'").run();
    try {
      const t0 = performance.now();
      expect(await s.read(async (tx) => (await tx.getOwner("o1"))?.status)).toBe("active");
      expect(performance.now() - t0).toBeLessThan(100);
      await expectCode(
        s.tx((tx) => tx.getOwner("o1")),
        "store.conflict",
      );
    } finally {
      other.exec("COMMIT");
      other.close();
    }
    expect(await s.read(async (tx) => (await tx.getOwner("o1"))?.status)).toBe("suspended");
    await s.close();
  });

  it("serialises read() calls on its connection; each gets its own transaction", async () => {
    const s = new SqliteStore({ path: file() });
    await s.migrate();
    await s.tx((tx) => tx.insertOwner(owner("o1")));
    const order: string[] = [];
    const one = (name: string) =>
      s.read(async (tx) => {
        order.push(`${name}:start`);
        await new Promise((r) => setTimeout(r, 5));
        await tx.getOwner("o1");
        order.push(`${name}:end`);
        return name;
      });
    expect(await Promise.all([one("a"), one("b"), one("c")])).toEqual(["a", "b", "c"]);
    expect(order).toEqual(["a:start", "a:end", "b:start", "b:end", "c:start", "c:end"]);
    await s.close();
  });
});
