import { createHash } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { SQLITE_MIGRATIONS, SqliteStore } from "../../src/store/sqlite/index.js";
import { applyMigrations } from "../../src/store/sqlite/migrate.js";
import type { Migration } from "../../src/store/sqlite/migrations/index.js";
import {
  activation,
  agent,
  bytes,
  certificate,
  device,
  ekRegistration,
  expectCode,
  owner,
  scimUser,
  seedAgent,
  T0,
  transfer,
} from "./fixtures.js";

// The SQLite schema history: released steps never change, a database made by an older
// build moves forward with its data, and the constraints of 0002 hold.

const dir = mkdtempSync(join(tmpdir(), "mayfly-migrations-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
const file = () => join(dir, `m${++n}.db`);

// The SHA-256 of each released migration's SQL, as recorded in schema_migrations. A
// database that applied a step refuses a build whose step differs: add a new step
// instead of editing one, and append its checksum here.
const RELEASED: Record<number, string> = {
  1: "2e0a59d09b57f9b0c5a19b881333ab3527af9974333e75917fd89d0e84b89739",
  2: "0fc6a0f6b798f74d1e1d544ca9699383504f114233f718e2c06ef1922695ba40",
  3: "3f26b980b71cd223bd50c61d57313be20a60614f31a5cfb6b5830b0bac2a6727",
  4: "47d7f15870ab313833b50dff91a4d70936dcabdfa92c6b34711f62ac3ef5d729",
  5: "20b174025b63db4a8af3eedbf427aa5be24a94165961e54d6986d9391b90eee6",
  6: "1509b54fde0497adf25ecabf3980196cb78bda39f48ef0ab9917b3a68a75e25c",
  7: "4d4dc6c4adbf6b6bcd0fb757287c750fa84c6be6c6a7bffee5c47b0713d756d6",
  8: "7167f63c0a194f4230199e68b544c485ed3f9a25bc421a0caaf295bd47bfb01d",
  9: "44efd59acccd7d8fda328f42483bc8c13442c8a8c44eb0fa0a27f6d02f7f0d02",
  10: "5c3acdc9b009eac1ae543f3f1f133b4dc415aa833d28093a32805f9941a85713",
  11: "f376045eff4f97cfe34e5efa64af65cb9b249caf04e7f8bf7d239eec024f9904",
};

function tables(path: string): string[] {
  const raw = new Database(path, { readonly: true });
  const rows = raw
    .prepare("SELECT name FROM sqlite_master WHERE type IN ('table', 'index') ORDER BY name")
    .all();
  raw.close();
  return (rows as { name: string }[]).map((r) => r.name);
}

describe("SQLite migrations", () => {
  it("released steps are unchanged, numbered upwards from 1", () => {
    const versions = SQLITE_MIGRATIONS.map((m) => m.version);
    expect(versions[0]).toBe(1);
    expect(versions).toEqual([...versions].sort((a, b) => a - b));
    expect(new Set(versions).size).toBe(versions.length);
    const sums = Object.fromEntries(
      SQLITE_MIGRATIONS.map((m) => [m.version, createHash("sha256").update(m.sql).digest("hex")]),
    );
    expect(sums).toEqual(RELEASED);
  });

  it("moves a database migrated by 0001 only to 0002, keeping its data", async () => {
    const path = file();
    // What a build that knew only 0001 left behind, written with the real runner.
    const old = new Database(path);
    old.pragma("journal_mode = WAL");
    applyMigrations(old, SQLITE_MIGRATIONS.slice(0, 1));
    old
      .prepare(
        "INSERT INTO devices (id, kind, status, ek_pub_hash, ek_cert_issuer, ak_name, ak_public, serial, " +
          "mdm_id, managed, compliant, assigned_owner_id, created_at, updated_at) " +
          "VALUES ('d1', 'tpm', 'active', ?, NULL, NULL, NULL, 'SN-1', NULL, 0, 1, NULL, ?, ?)",
      )
      .run(bytes("ek-hash-ek-1"), T0, T0);
    old.close();
    expect(tables(path)).not.toContain("activations");

    const store = new SqliteStore({ path });
    await store.migrate();
    await store.migrate();
    const raw = new Database(path, { readonly: true });
    const applied = raw
      .prepare("SELECT version, name, checksum FROM schema_migrations ORDER BY version")
      .all();
    raw.close();
    expect(applied).toEqual(
      SQLITE_MIGRATIONS.map((m) => ({ version: m.version, name: m.name, checksum: RELEASED[m.version] })),
    );
    expect(tables(path)).toEqual(
      expect.arrayContaining(["activations", "activations_ek_pub_hash_created_at_idx", "ek_registrations"]),
    );

    // The old device is there, and the new methods work on it.
    const before = await store.tx((tx) => tx.getDevice("d1"));
    expect(before).toMatchObject({ id: "d1", akName: null, serial: "SN-1", compliant: true });
    await store.tx(async (tx) => {
      await tx.insertActivation(activation("act-1"));
      expect(await tx.completeActivation("act-1", "succeeded", "d1", T0 + 1)).toBe(true);
      await tx.setDeviceAk("d1", bytes("ak-public-act-1", 90), bytes("ak-name-act-1", 34), "CN=X", T0 + 1);
      await tx.upsertEkRegistration(ekRegistration("ek-1"));
      await tx.insertOwner(owner("o1"));
    });
    await store.close();

    const again = new SqliteStore({ path });
    await again.migrate();
    await again.tx(async (tx) => {
      expect(await tx.getActivation("act-1")).toMatchObject({ state: "succeeded", deviceId: "d1" });
      expect((await tx.getDevice("d1"))?.akName).toEqual(bytes("ak-name-act-1", 34));
      expect(await tx.getEkRegistration(bytes("ek-hash-ek-1"))).toEqual(ekRegistration("ek-1"));
      expect(await tx.countActivationsSince(bytes("ek-hash-ek-1"), T0)).toBe(1);
    });
    await again.close();
  });

  it("moves a database migrated to 0002 to 0003: old owners get no groups, old agents no reason", async () => {
    const path = file();
    const old = new Database(path);
    old.pragma("journal_mode = WAL");
    applyMigrations(old, SQLITE_MIGRATIONS.slice(0, 2));
    old
      .prepare(
        "INSERT INTO owners (id, issuer, subject, email, display_name, status, manager, department, " +
          "created_at, updated_at) VALUES ('o1', 'https://idp.example.test', 's1', NULL, NULL, 'active', " +
          "'m1', 'R&D', ?, ?)",
      )
      .run(T0, T0);
    old
      .prepare(
        "INSERT INTO devices (id, kind, status, managed, compliant, created_at, updated_at) " +
          "VALUES ('d1', 'tpm', 'active', 0, 0, ?, ?)",
      )
      .run(T0, T0);
    old
      .prepare(
        "INSERT INTO agents (id, name, owner_id, device_id, spiffe_id, purpose, profile, status, expires_at, " +
          "last_issued_at, created_at, updated_at) VALUES ('a1', 'n', 'o1', 'd1', 'spiffe://t/agent/a1', 'p', " +
          "'default', 'quarantined', ?, NULL, ?, ?)",
      )
      .run(T0 + 1000, T0, T0);
    old.close();
    expect(tables(path)).not.toContain("scim_users");

    const store = new SqliteStore({ path });
    await store.migrate();
    expect(tables(path)).toEqual(
      expect.arrayContaining(["scim_users", "agent_transfers", "agents_status_idx"]),
    );
    await store.tx(async (tx) => {
      expect(await tx.getOwner("o1")).toMatchObject({ groups: [], manager: "m1" });
      expect(await tx.getAgent("a1")).toMatchObject({ status: "quarantined", statusReason: null });
      await tx.insertOwner(owner("o2"));
      await tx.insertScimUser(scimUser("u1", "o1"));
      await tx.insertTransfer(transfer("t1", "a1", "o1", "o2"));
      await tx.setAgentStatus("a1", "active", T0 + 1, null);
    });
    await store.close();
  });

  it("moves a database at 0009 to 0011: the challenges table goes, a redeemed nonce stays spent", async () => {
    const path = file();
    const before = SQLITE_MIGRATIONS.filter((m) => m.version <= 9);
    expect(before.map((m) => m.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const old = new SqliteStore({ path });
    // What a 0009 build left behind: a redemption wrote a challenges row and its certificate.
    const raw = new Database(path);
    applyMigrations(raw, before);
    raw.close();
    await old.tx(async (tx) => {
      await seedAgent(tx, "a1");
      await tx.insertCertificate(certificate("s1", "a1"));
    });
    await old.close();
    const legacy = new Database(path);
    legacy
      .prepare(
        "INSERT INTO challenges (nonce, agent_id, created_at, expires_at, consumed_at) VALUES (?, 'a1', ?, ?, ?)",
      )
      .run(bytes("nonce-s1"), T0, T0 + 60_000, T0);
    legacy.close();
    expect(tables(path)).toEqual(
      expect.arrayContaining(["challenges", "challenges_expires_at_idx", "challenges_agent_id_idx"]),
    );

    const store = new SqliteStore({ path });
    await store.migrate();
    expect(await store.tx((tx) => tx.listCertificatesByAgent("a1"))).toEqual([certificate("s1", "a1")]);
    expect(tables(path).filter((t) => t.startsWith("challenges"))).toEqual([]);
    // The certificate row is the record of the redemption now: a second one is refused.
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
    const applied = (path: string) => {
      const raw = new Database(path, { readonly: true });
      const rows = raw.prepare("SELECT version FROM schema_migrations ORDER BY version").all();
      raw.close();
      return (rows as { version: number }[]).map((r) => r.version);
    };
    const run = (path: string, steps: Migration[]) => {
      const db = new Database(path);
      try {
        applyMigrations(db, steps);
      } finally {
        db.close();
      }
    };

    it("applies 1, 2, 4, and again without change; 4 is the newest this build knows", () => {
      const path = file();
      run(path, [step(1), step(2), step(4)]);
      run(path, [step(1), step(2), step(4)]);
      expect(applied(path)).toEqual([1, 2, 4]);
      expect(tables(path)).toEqual(expect.arrayContaining(["t1", "t2", "t4"]));
      expect(tables(path)).not.toContain("t3");
      // A build that knows only 1 and 2 refuses it: it is newer than that build.
      expect(() => run(path, [step(1), step(2)])).toThrow(/newer than this build knows \(2\)/);
    });

    it("refuses a list out of order or with a repeated version (a build bug)", () => {
      for (const steps of [[step(1), step(3), step(2)], [step(1), step(1)], [step(0)]]) {
        expect(() => run(file(), steps)).toThrow(/internal.error: migration t\d is out of order/);
      }
    });

    it("refuses a database that lacks a step older than its newest, and applies nothing", () => {
      const path = file();
      run(path, [step(1), step(2), step(4)]);
      let err: unknown;
      try {
        run(path, [step(1), step(2), step(3), step(4)]);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: "config.invalid" });
      expect((err as Error).message).toMatch(
        /migration 3 \(t3\) is missing from this database, which already has migration 4/,
      );
      expect(applied(path)).toEqual([1, 2, 4]);
      expect(tables(path)).not.toContain("t3");
    });
  });

  describe("0003 constraints", () => {
    async function refused(write: Parameters<SqliteStore["tx"]>[0]): Promise<void> {
      const s = new SqliteStore({ path: ":memory:" });
      await s.migrate();
      await expectCode(s.tx(write), "internal.error");
      await s.close();
    }
    async function seeded(tx: Parameters<Parameters<SqliteStore["tx"]>[0]>[0]) {
      await tx.insertOwner(owner("o1"));
      await tx.insertOwner(owner("o2"));
      await tx.insertDevice(device("d1"));
      await tx.insertAgent(agent("a1", "o1", "d1"));
    }

    it("a transfer whose completion time disagrees with its state, or an unknown state", async () => {
      await refused(async (tx) => {
        await seeded(tx);
        await tx.insertTransfer(transfer("t", "a1", "o1", "o2", { completedAt: T0 }));
      });
      await refused(async (tx) => {
        await seeded(tx);
        await tx.insertTransfer(transfer("t", "a1", "o1", "o2", { state: "accepted" }));
      });
      await refused(async (tx) => {
        await seeded(tx);
        await tx.insertTransfer(
          transfer("t", "a1", "o1", "o2", { state: "gone" as "accepted", completedAt: T0 }),
        );
      });
    });

    it("a SCIM user version below 1", async () => {
      await refused(async (tx) => {
        await seeded(tx);
        await tx.insertScimUser(scimUser("u", "o1", { version: 0 }));
      });
    });
  });

  it("refuses a database whose 0002 differs from this build's", async () => {
    const path = file();
    const s = new SqliteStore({ path });
    await s.migrate();
    await s.close();
    const raw = new Database(path);
    raw.prepare("UPDATE schema_migrations SET checksum = 'edited' WHERE version = 2").run();
    raw.close();
    const t = new SqliteStore({ path });
    await expectCode(t.migrate(), "config.invalid");
    await t.close();
  });

  describe("0002 constraints (a caller bug is refused, not stored)", () => {
    async function refused(write: Parameters<SqliteStore["tx"]>[0]): Promise<void> {
      const s = new SqliteStore({ path: ":memory:" });
      await s.migrate();
      await expectCode(s.tx(write), "internal.error");
      await s.close();
    }

    it("an unknown state or trust path", async () => {
      await refused((tx) => tx.insertActivation(activation("a", "ek", { state: "done" as "failed" })));
      await refused((tx) =>
        tx.insertActivation(activation("a", "ek", { trustedVia: "tofu" as "registered" })),
      );
    });

    it("a completion time that disagrees with the state, or a success without a device", async () => {
      await refused((tx) => tx.insertActivation(activation("a", "ek", { completedAt: T0 + 1 })));
      await refused((tx) => tx.insertActivation(activation("a", "ek", { state: "failed" })));
      await refused((tx) =>
        tx.insertActivation(activation("a", "ek", { state: "succeeded", completedAt: T0 + 1 })),
      );
      await refused(async (tx) => {
        await tx.insertActivation(activation("a"));
        await tx.completeActivation("a", "succeeded", null, T0 + 1);
      });
    });

    it("hashes that are not SHA-256 sized", async () => {
      await refused((tx) => tx.insertActivation(activation("a", "ek", { ekPubHash: bytes("x", 20) })));
      await refused((tx) => tx.insertActivation(activation("a", "ek", { secretHash: bytes("x", 33) })));
      await refused((tx) => tx.upsertEkRegistration(ekRegistration("ek", { ekPubHash: bytes("spki", 91) })));
    });
  });
});
