import { createHash, randomBytes } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { appendAudit } from "../../src/audit/chain.js";
import { verifyAuditChain } from "../../src/audit/verify.js";
import { ManualClock } from "../../src/runtime/clock.js";
import { openStore, parseStoreUrl } from "../../src/store/open.js";
import { type AuditLockMode, PG_MIGRATIONS, PostgresStore } from "../../src/store/postgres/index.js";
import { applyPgMigrations } from "../../src/store/postgres/migrate.js";
import { SQLITE_MIGRATIONS } from "../../src/store/sqlite/index.js";
import type { Migration } from "../../src/store/sqlite/migrations/index.js";
import { useTestDatabase } from "../helpers/postgres.js";
import { bytes, certificate, expectCode, owner, seedAgent, T0 } from "./fixtures.js";

// What is particular to the PostgreSQL backend: its migration history and the lock it
// runs under, the store URL, retries, and the locks that stand in for SQLite's single
// writer: the audit chain head and the liveness rows, across separate pools (replicas).

const db = useTestDatabase();

async function fresh(opts: Partial<ConstructorParameters<typeof PostgresStore>[0]> = {}) {
  const url = await db().freshSchemaUrl();
  const make = (more: Partial<ConstructorParameters<typeof PostgresStore>[0]> = {}) =>
    new PostgresStore({ connectionString: url, poolSize: 4, ...opts, ...more });
  return { url, make };
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string, values: unknown[] = []) {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query<T>(text, values)).rows;
  } finally {
    await c.end();
  }
}

// Released PostgreSQL migrations never change (a database that applied one refuses a
// build whose step differs): add a step instead, and append its checksum here.
const RELEASED: Record<number, string> = {
  1: "0f1090c44bd11ad6da0391a23b5c9d8806433b21a44e1be6e39ef7e79a1cae4a",
  2: "9f473277db4a1d53d032c6daf24947d6103b36350584ddc1a3f7e180b903225b",
  3: "3f26b980b71cd223bd50c61d57313be20a60614f31a5cfb6b5830b0bac2a6727",
  4: "47d7f15870ab313833b50dff91a4d70936dcabdfa92c6b34711f62ac3ef5d729",
  5: "dadca05c5e4732d14cc50f81bc330fe28a8d45f7784b08c5b950b7fc841e56d5",
  6: "1509b54fde0497adf25ecabf3980196cb78bda39f48ef0ab9917b3a68a75e25c",
  7: "855269a1ed6ad3134c18c1d46ed953a675ae4201fffff6eb672d9e5e84ca7b0d",
  8: "7167f63c0a194f4230199e68b544c485ed3f9a25bc421a0caaf295bd47bfb01d",
  9: "6ada8d051fdefc5a2f3a360cbbfe7abe39f123883156cc793535fc25be9209a0",
  10: "e88133ffa622ab9f5c30f3a9ab5f9cb0fd2f915eea392e6fec2d4d2a601356d0",
  11: "f376045eff4f97cfe34e5efa64af65cb9b249caf04e7f8bf7d239eec024f9904",
};

describe("PostgreSQL migrations", () => {
  it("mirror SQLite's, step for step (same versions and names)", () => {
    expect(PG_MIGRATIONS.map((m) => [m.version, m.name])).toEqual(
      SQLITE_MIGRATIONS.map((m) => [m.version, m.name]),
    );
  });

  it("keep released steps unchanged", () => {
    for (const m of PG_MIGRATIONS) {
      expect(createHash("sha256").update(m.sql).digest("hex"), `migration ${m.version}`).toBe(
        RELEASED[m.version],
      );
    }
  });

  it("apply once when several replicas start together (advisory lock)", async () => {
    const { url, make } = await fresh();
    const stores = Array.from({ length: 4 }, () => make());
    await Promise.all(stores.map((s) => s.migrate()));
    await Promise.all(stores.map((s) => s.close()));
    const rows = await sql<{ version: string; name: string; checksum: string }>(
      url,
      "SELECT version::int AS version, name, checksum FROM schema_migrations ORDER BY version",
    );
    expect(rows).toEqual(
      PG_MIGRATIONS.map((m) => ({ version: m.version, name: m.name, checksum: RELEASED[m.version] })),
    );
    expect(await sql(url, "SELECT id FROM audit_head")).toEqual([{ id: 1 }]);
  });

  it("refuse a database migrated by a newer build, or whose applied step changed", async () => {
    const newer = await fresh();
    const a = newer.make();
    await a.migrate();
    await sql(
      newer.url,
      "INSERT INTO schema_migrations (version, name, checksum) VALUES (99, 'future', 'x')",
    );
    await expectCode(a.migrate(), "config.invalid");
    await a.close();

    const edited = await fresh();
    const b = edited.make();
    await b.migrate();
    await sql(edited.url, "UPDATE schema_migrations SET checksum = 'edited' WHERE version = 2");
    await expectCode(b.migrate(), "config.invalid");
    await b.close();
  });

  it("move a database at 0009 to 0011: the challenges table goes, a redeemed nonce stays spent", async () => {
    const { url, make } = await fresh();
    const pool = new pg.Pool({ connectionString: url, max: 1 });
    await applyPgMigrations(
      pool,
      PG_MIGRATIONS.filter((m) => m.version <= 9),
    );
    await pool.end();
    // What a 0009 build left behind: a redemption wrote a challenges row and its certificate.
    const old = make();
    await old.tx(async (tx) => {
      await seedAgent(tx, "a1");
      await tx.insertCertificate(certificate("s1", "a1"));
    });
    await old.close();
    await sql(
      url,
      "INSERT INTO challenges (nonce, agent_id, created_at, expires_at, consumed_at) VALUES ($1, 'a1', $2, $3, $4)",
      [bytes("nonce-s1"), T0, T0 + 60_000, T0],
    );
    const relations = () =>
      sql<{ relname: string }>(
        url,
        "SELECT relname FROM pg_class WHERE relnamespace = current_schema()::regnamespace AND relname LIKE 'challenges%' ORDER BY relname",
      );
    expect((await relations()).map((r) => r.relname)).toEqual([
      "challenges",
      "challenges_agent_id_idx",
      "challenges_expires_at_idx",
      "challenges_pkey",
    ]);

    const store = make();
    await store.migrate();
    expect(await relations()).toEqual([]);
    expect(await store.tx((tx) => tx.listCertificatesByAgent("a1"))).toEqual([certificate("s1", "a1")]);
    await expectCode(
      store.tx((tx) => tx.insertCertificate(certificate("s2", "a1", { challengeNonce: bytes("nonce-s1") }))),
      "challenge.consumed",
    );
    await store.close();
  });

  describe("versions with gaps (a step numbered on another branch lands later)", () => {
    const step = (version: number): Migration => ({
      version,
      name: `t${version}`,
      sql: `CREATE TABLE t${version} (x INTEGER);`,
    });
    async function run(url: string, steps: Migration[]): Promise<void> {
      const pool = new pg.Pool({ connectionString: url, max: 1 });
      try {
        await applyPgMigrations(pool, steps);
      } finally {
        await pool.end();
      }
    }
    const applied = async (url: string) =>
      (
        await sql<{ version: number }>(
          url,
          "SELECT version::int AS version FROM schema_migrations ORDER BY 1",
        )
      ).map((r) => r.version);

    it("apply 1, 2, 4, and again without change; 4 is the newest this build knows", async () => {
      const { url } = await fresh();
      await run(url, [step(1), step(2), step(4)]);
      await run(url, [step(1), step(2), step(4)]);
      expect(await applied(url)).toEqual([1, 2, 4]);
      await expect(run(url, [step(1), step(2)])).rejects.toThrow(/newer than this build knows \(2\)/);
    });

    it("refuse a list out of order or with a repeated version (a build bug)", async () => {
      const { url } = await fresh();
      for (const steps of [[step(1), step(3), step(2)], [step(1), step(1)], [step(0)]]) {
        await expect(run(url, steps)).rejects.toThrow(/internal.error: migration t\d is out of order/);
      }
    });

    it("refuse a database that lacks a step older than its newest, and apply nothing", async () => {
      const { url } = await fresh();
      await run(url, [step(1), step(2), step(4)]);
      const err = await run(url, [step(1), step(2), step(3), step(4)]).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "config.invalid" });
      expect((err as Error).message).toMatch(
        /migration 3 \(t3\) is missing from this database, which already has migration 4/,
      );
      expect(await applied(url)).toEqual([1, 2, 4]);
      expect(await sql(url, "SELECT to_regclass('t3') AS t")).toEqual([{ t: null }]);
    });
  });
});

describe("openStore with postgres: URLs", () => {
  it("parses postgres: and postgresql: URLs, refusing ones that name no database", () => {
    expect(parseStoreUrl("postgres://u@h:5432/db?sslmode=require")).toEqual({
      kind: "postgres",
      url: "postgres://u@h:5432/db?sslmode=require",
    });
    expect(parseStoreUrl("postgresql://h/db")).toEqual({ kind: "postgres", url: "postgresql://h/db" });
    for (const url of ["postgres://h", "postgres://h/", "postgres://[bad"]) {
      expect(() => parseStoreUrl(url)).toThrow(/config.invalid/);
    }
  });

  it("opens and migrates the database a URL names", async () => {
    const s = await openStore(db().url);
    expect(s.kind).toBe("postgres");
    await s.tx((tx) => tx.insertOwner(owner("o1")));
    expect(await s.tx((tx) => tx.getOwner("o1"))).toEqual(owner("o1"));
    await s.close();
  });

  it("reports a server that does not answer as an error, quickly", async () => {
    const s = new PostgresStore({
      connectionString: "postgres://postgres@127.0.0.1:9/x",
      connectTimeoutMs: 2000,
    });
    await expectCode(s.migrate(), "internal.error");
    await expectCode(
      s.tx((tx) => tx.getOwner("o1")),
      "internal.error",
    );
    await s.close();
  });
});

describe("PostgreSQL transactions", () => {
  it("runs a deadlock victim again, so both transactions commit", async () => {
    const { make } = await fresh();
    const s = make();
    await s.migrate();
    await s.tx(async (tx) => {
      await tx.insertOwner(owner("o1"));
      await tx.insertOwner(owner("o2"));
    });
    let runs = 0;
    let arrived = 0;
    const both = async () => {
      arrived++;
      while (arrived < 2) await sleep(5);
    };
    // Opposite lock orders, made to overlap: PostgreSQL aborts one (40P01) after
    // deadlock_timeout; tx() runs it again and it commits.
    const crossed = (first: string, second: string) =>
      s.tx(async (tx) => {
        runs++;
        await tx.setOwnerStatus(first, "suspended", T0 + runs);
        await both();
        await tx.setOwnerStatus(second, "suspended", T0 + runs);
        return first;
      });
    expect((await Promise.all([crossed("o1", "o2"), crossed("o2", "o1")])).sort()).toEqual(["o1", "o2"]);
    expect(runs).toBe(3);
    await s.close();
  });

  it("gives up with store.conflict when the retries run out", async () => {
    const { make } = await fresh({ maxAttempts: 1 });
    const s = make();
    await s.migrate();
    await s.tx(async (tx) => {
      await tx.insertOwner(owner("o1"));
      await tx.insertOwner(owner("o2"));
    });
    let arrived = 0;
    const crossed = (first: string, second: string) =>
      s.tx(async (tx) => {
        await tx.setOwnerStatus(first, "suspended", T0);
        arrived++;
        while (arrived < 2) await sleep(5);
        await tx.setOwnerStatus(second, "suspended", T0);
      });
    const results = await Promise.allSettled([crossed("o1", "o2"), crossed("o2", "o1")]);
    const failed = results.filter((r) => r.status === "rejected");
    expect(failed).toHaveLength(1);
    expect((failed[0] as PromiseRejectedResult).reason).toMatchObject({ code: "store.conflict" });
    await s.close();
  });

  it("never reports a commit after a store error the callback swallowed", async () => {
    const { make } = await fresh();
    const s = make();
    await s.migrate();
    await s.tx((tx) => tx.insertOwner(owner("o1")));
    await expectCode(
      s.tx(async (tx) => {
        await tx.insertOwner(owner("o2"));
        await tx.insertOwner(owner("o1")).catch(() => undefined); // duplicate, swallowed
      }),
      "store.conflict",
    );
    expect(await s.tx((tx) => tx.getOwner("o2"))).toBeNull();
    await s.close();
  });

  it("holds an issuance's liveness facts: a leaver from another replica waits for it to commit", async () => {
    const { make } = await fresh();
    const a = make();
    const b = make();
    await a.migrate();
    await a.tx((tx) => tx.insertOwner(owner("o1")));
    const order: string[] = [];
    let read!: () => void;
    const hasRead = new Promise<void>((r) => {
      read = r;
    });
    const issuance = a.tx(async (tx) => {
      expect((await tx.getOwner("o1"))?.status).toBe("active");
      read();
      await sleep(300); // sign, check, ... while the leaver arrives
      order.push("issuance");
    });
    await hasRead;
    const leaver = b.tx(async (tx) => {
      await tx.setOwnerStatus("o1", "deprovisioned", T0 + 5);
      order.push("leaver");
    });
    await Promise.all([issuance, leaver]);
    expect(order).toEqual(["issuance", "leaver"]);
    // And the other way round: once the leaver has committed, a read sees it.
    expect((await a.tx((tx) => tx.getOwner("o1")))?.status).toBe("deprovisioned");
    await Promise.all([a.close(), b.close()]);
  });
});

describe("server secrets across replicas", () => {
  it("three pools racing to store a secret all get the one value stored", async () => {
    const { make } = await fresh();
    const replicas = [make(), make(), make()];
    await replicas[0]!.migrate();
    const got = await Promise.all(
      replicas.flatMap((r, i) =>
        Array.from({ length: 4 }, (_, j) =>
          r.tx((tx) => tx.ensureSecret("challenge-mac/v1", randomBytes(32))).then((v) => [i, j, v] as const),
        ),
      ),
    );
    expect(new Set(got.map(([, , v]) => v.toString("hex"))).size).toBe(1);
    // And a handle opened later reads it too.
    const late = make();
    expect(await late.tx((tx) => tx.ensureSecret("challenge-mac/v1", randomBytes(32)))).toEqual(got[0]![2]);
    await Promise.all([...replicas, late].map((r) => r.close()));
  });
});

describe("the audit chain across replicas", () => {
  const modes: AuditLockMode[] = ["row", "advisory", "optimistic"];
  it.each(modes)("stays one chain under concurrent appends from three pools (auditLock %s)", async (mode) => {
    const { make } = await fresh({ auditLock: mode, maxAttempts: 50 });
    const replicas = [make(), make(), make()];
    await replicas[0]!.migrate();
    const clock = new ManualClock(T0);
    const append = (s: PostgresStore, i: number) =>
      s.tx((tx) =>
        appendAudit(tx, clock, {
          type: "test.append",
          decision: "info",
          code: null,
          actor: `replica-${i % 3}`,
          subject: null,
          data: { i },
        }),
      );
    const events = await Promise.all(Array.from({ length: 45 }, (_, i) => append(replicas[i % 3]!, i)));
    expect(events.map((e) => e.seq).sort((x, y) => x - y)).toEqual(
      Array.from({ length: 45 }, (_, i) => i + 1),
    );
    expect(await verifyAuditChain(replicas[1]!)).toMatchObject({ ok: true, count: 45 });
    await Promise.all(replicas.map((r) => r.close()));
  });
});
