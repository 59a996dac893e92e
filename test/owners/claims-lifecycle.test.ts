import { describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/index.js";
import type { Config } from "../../src/config/schema.js";
import { isMayflyError } from "../../src/errors/index.js";
import { loginOwner, ownerClaims } from "../../src/owners/claims.js";
import { applyOwnerUpdate } from "../../src/owners/lifecycle.js";
import type { VerifiedIdToken } from "../../src/owners/oidc-verifier.js";
import { ManualClock } from "../../src/runtime/clock.js";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import { agent, device, owner, T0 } from "../store/fixtures.js";

// Claim mapping, login upsert and the lifecycle rules, on verified-token facts and a
// real (in-memory) store. The tokens themselves are verified in oidc-verifier.test.ts.

function config(raw: Record<string, unknown> = {}): Config {
  const r = validateConfig(raw);
  if (!r.ok) throw new Error(JSON.stringify(r.issues));
  return r.config;
}

function token(claims: Record<string, unknown>): VerifiedIdToken {
  return {
    issuer: "https://idp.example.test",
    subject: String(claims.sub),
    audience: ["mayfly"],
    azp: null,
    authTime: T0,
    issuedAt: T0,
    expiresAt: T0 + 3_600_000,
    claims: { iss: "https://idp.example.test", ...claims },
  };
}

const random = { bytes: (n: number) => Buffer.alloc(n, 7) };

async function store() {
  const s = new SqliteStore({ path: ":memory:", durability: "normal" });
  await s.migrate();
  return s;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (e) {
    if (isMayflyError(e)) return e.code;
    throw e;
  }
}

describe("claims", () => {
  it("maps a configurable subject (Entra's oid), dotted paths (Keycloak roles) and single-string groups", () => {
    const t = token({
      sub: "pairwise-xyz",
      oid: "0a21f0f2",
      realm_access: { roles: ["a", "b", "a", 3] },
      upn: "u@x",
    });
    expect(
      ownerClaims(t, { subject: "oid", email: "upn", name: "name", groups: "realm_access.roles" }),
    ).toEqual({
      subject: "0a21f0f2",
      email: "u@x",
      name: null,
      groups: ["a", "b"],
    });
    expect(ownerClaims(token({ sub: "s", groups: "solo" }), config().owners.claims).groups).toEqual(["solo"]);
    expect(() => ownerClaims(t, { subject: "missing", email: "e", name: "n", groups: "g" })).toThrow(
      /subject claim/,
    );
  });
});

describe("login upsert", () => {
  it("creates the owner at first login, refreshes email/name/groups later (audited), never status", async () => {
    const s = await store();
    const clock = new ManualClock(T0);
    const deps = { clock, random, config: config() };
    const first = await s.tx((tx) =>
      loginOwner(tx, deps, token({ sub: "alice", email: "a@x", groups: ["g1"] })),
    );
    expect(first.created).toBe(true);
    expect(first.owner).toMatchObject({ subject: "alice", email: "a@x", groups: ["g1"], status: "active" });
    await s.tx((tx) => tx.setOwnerStatus(first.owner.id, "suspended", T0 + 1));
    const again = await s.tx((tx) =>
      loginOwner(tx, deps, token({ sub: "alice", email: "a@x", groups: ["g1"] })),
    );
    expect(again.created).toBe(false);
    expect(again.owner.status).toBe("suspended");
    const changed = await s.tx((tx) =>
      loginOwner(tx, deps, token({ sub: "alice", email: "new@x", groups: [] })),
    );
    expect(changed.owner).toMatchObject({ email: "new@x", groups: [], status: "suspended" });
    const types = (await s.tx((tx) => tx.listAuditEvents(1, 100))).map((e) => e.type);
    expect(types).toEqual(["owner.create", "owner.update"]);
    await s.close();
  });

  it("with createOnLogin false, only provisioned people are owners (owner.not_provisioned)", async () => {
    const s = await store();
    const deps = { clock: new ManualClock(T0), random, config: config({ owners: { createOnLogin: false } }) };
    expect(await codeOf(s.tx((tx) => loginOwner(tx, deps, token({ sub: "nobody" }))))).toBe(
      "owner.not_provisioned",
    );
    await s.tx((tx) => tx.insertOwner(owner("o1", { issuer: "https://idp.example.test", subject: "known" })));
    expect(await codeOf(s.tx((tx) => loginOwner(tx, deps, token({ sub: "known" }))))).toBe("ok");
    await s.close();
  });
});

describe("lifecycle rules", () => {
  async function seeded() {
    const s = await store();
    await s.tx(async (tx) => {
      await tx.insertOwner(owner("o1", { manager: null, department: "R&D" }));
      await tx.insertDevice(device("d1"));
      await tx.insertAgent(agent("a1", "o1", "d1"));
      await tx.insertAgent(agent("a2", "o1", "d1", { status: "dormant", statusReason: "inactivity" }));
      await tx.insertAgent(agent("a3", "o1", "d1", { status: "suspended", statusReason: "admin" }));
      await tx.insertAgent(agent("a4", "o1", "d1", { status: "retired", statusReason: "expired" }));
    });
    return s;
  }
  const update = async (s: SqliteStore, over: Record<string, unknown>, cfg = config()) =>
    s.tx(async (tx) => {
      const before = (await tx.getOwner("o1"))!;
      return applyOwnerUpdate(tx, new ManualClock(T0 + 5), cfg, before, { ...before, ...over }, "scim");
    });
  const statuses = (s: SqliteStore) =>
    s.tx(async (tx) => (await tx.listAgentsByOwner("o1")).map((a) => [a.id, a.status, a.statusReason]));

  it("a first manager is not a move; a changed one quarantines active and dormant agents only", async () => {
    const s = await seeded();
    expect((await update(s, { manager: "m1" })).moved).toEqual([]);
    const change = await update(s, { manager: "m2" });
    expect(change.moved).toEqual([{ attribute: "manager", from: "m1", to: "m2" }]);
    expect(change.quarantined).toEqual(["a1", "a2"]);
    expect(await statuses(s)).toEqual([
      ["a1", "quarantined", "owner.moved"],
      ["a2", "quarantined", "owner.moved"],
      ["a3", "suspended", "admin"],
      ["a4", "retired", "expired"],
    ]);
    await s.close();
  });

  it("a department removed is a move; attributes not in moverAttributes are not", async () => {
    const s = await seeded();
    expect(
      (await update(s, { department: "Sales" }, config({ owners: { moverAttributes: ["manager"] } }))).moved,
    ).toEqual([]);
    expect((await update(s, { department: null })).quarantined).toEqual(["a1", "a2"]);
    await s.close();
  });

  it("a leaver suspends every agent that is not retired or held by an admin; a returner revives none", async () => {
    const s = await seeded();
    const left = await update(s, { status: "deprovisioned" });
    expect(left).toMatchObject({ leaver: true, suspended: ["a1", "a2"] });
    const back = await update(s, { status: "active" });
    expect(back).toMatchObject({ returned: true, suspended: [], quarantined: [] });
    expect((await statuses(s)).map((x) => x[1])).toEqual(["suspended", "suspended", "suspended", "retired"]);
    await s.close();
  });
});
