import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertAuditChain } from "../../src/audit/index.js";
import { loadChallengeKey, mintNonce, verifyChallenge } from "../../src/authority/challenges.js";
import { isMayflyError } from "../../src/errors/index.js";
import type { Random } from "../../src/runtime/clock.js";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import type { HttpResult } from "../helpers/https.js";
import { useTestDatabase } from "../helpers/postgres.js";
import {
  attest,
  issueVia,
  newAgentKey,
  startTestCa,
  TEST_CONFIG,
  type TestAgent,
  type TestCa,
} from "../helpers/test-ca.js";

// Challenges are MAC'd nonces (src/authority/challenges.ts): minting writes nothing,
// verifying reads nothing, and the certificate row the recording transaction inserts
// carries the nonce under a unique constraint, which makes it one-time. These tests hold
// the design to the guarantees of the stored one-time nonces it replaced, through the
// real server on both backends where it matters.

const T = 1_750_000_000_000;
const KEY = Buffer.alloc(32, 0x5a);
const fixedRandom = (b: Buffer): Random => ({ bytes: (n) => b.subarray(0, n) });

function codeOf(f: () => unknown): string | null {
  try {
    f();
    return null;
  } catch (e) {
    if (!isMayflyError(e)) throw e;
    return e.code;
  }
}

// Byte ranges of the layout: random 12 | expiresAt 6 | agentTag 4 | mac 10.
const REGIONS = [
  ["random", 0, 12],
  ["expiry", 12, 18],
  ["agent tag", 18, 22],
  ["mac", 22, 32],
] as const;

describe("the nonce (no store)", () => {
  const nonce = mintNonce(KEY, fixedRandom(Buffer.alloc(12, 1)), "agent-a", T + 60_000);

  it("is 32 bytes: the random bytes, the expiry in clear, a tag and a MAC", () => {
    expect(nonce).toHaveLength(32);
    expect(nonce.subarray(0, 12)).toEqual(Buffer.alloc(12, 1));
    expect(nonce.readUIntBE(12, 6)).toBe(T + 60_000);
    expect(verifyChallenge(KEY, nonce, "agent-a", T)).toEqual({ expiresAt: T + 60_000 });
    // Different random bytes, a different nonce (and MAC).
    const other = mintNonce(KEY, fixedRandom(Buffer.alloc(12, 2)), "agent-a", T + 60_000);
    expect(other.subarray(22).equals(nonce.subarray(22))).toBe(false);
  });

  it.each(REGIONS)("refuses a nonce with a byte of the %s flipped as challenge.not_found", (_, from, to) => {
    for (let i = from; i < to; i++) {
      for (const bit of [0x01, 0x80]) {
        const bad = Buffer.from(nonce);
        bad[i]! ^= bit;
        expect(
          codeOf(() => verifyChallenge(KEY, bad, "agent-a", T)),
          `byte ${i} bit ${bit}`,
        ).toBe("challenge.not_found");
      }
    }
  });

  it("refuses other lengths as challenge.not_found", () => {
    expect(codeOf(() => verifyChallenge(KEY, nonce.subarray(0, 31), "agent-a", T))).toBe(
      "challenge.not_found",
    );
    expect(codeOf(() => verifyChallenge(KEY, Buffer.concat([nonce, Buffer.alloc(1)]), "agent-a", T))).toBe(
      "challenge.not_found",
    );
    expect(codeOf(() => verifyChallenge(KEY, Buffer.alloc(0), "agent-a", T))).toBe("challenge.not_found");
  });

  it("refuses another agent's nonce as challenge.agent_mismatch, and a prefix of the id too", () => {
    expect(codeOf(() => verifyChallenge(KEY, nonce, "agent-b", T))).toBe("challenge.agent_mismatch");
    expect(codeOf(() => verifyChallenge(KEY, nonce, "agent-", T))).toBe("challenge.agent_mismatch");
    expect(codeOf(() => verifyChallenge(KEY, nonce, "agent-aa", T))).toBe("challenge.agent_mismatch");
  });

  it("expires at expiresAt exactly: one ms before passes, at expiresAt is expired", () => {
    expect(codeOf(() => verifyChallenge(KEY, nonce, "agent-a", T + 59_999))).toBeNull();
    expect(codeOf(() => verifyChallenge(KEY, nonce, "agent-a", T + 60_000))).toBe("challenge.expired");
    expect(codeOf(() => verifyChallenge(KEY, nonce, "agent-a", T + 10 * 86_400_000))).toBe(
      "challenge.expired",
    );
  });

  it("a nonce minted under another key is unknown, whoever presents it", () => {
    const otherKey = Buffer.alloc(32, 0xa5);
    const foreign = mintNonce(otherKey, fixedRandom(Buffer.alloc(12, 1)), "agent-a", T + 60_000);
    expect(codeOf(() => verifyChallenge(KEY, foreign, "agent-a", T))).toBe("challenge.not_found");
    expect(codeOf(() => verifyChallenge(otherKey, foreign, "agent-a", T))).toBeNull();
  });
});

describe("the challenge key", () => {
  const dir = mkdtempSync(join(tmpdir(), "mayfly-chkey-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("is one random 32-byte key per store, the same from every handle on it", async () => {
    const path = join(dir, "k.db");
    const a = new SqliteStore({ path });
    await a.migrate();
    const b = new SqliteStore({ path });
    const random: Random = { bytes: (n) => randomBytes(n) };
    const [ka, kb] = await Promise.all([loadChallengeKey(a, random), loadChallengeKey(b, random)]);
    expect(ka).toHaveLength(32);
    expect(kb.equals(ka)).toBe(true);
    expect((await loadChallengeKey(a, random)).equals(ka)).toBe(true);
    await Promise.all([a.close(), b.close()]);
    // Another database, another key.
    const c = new SqliteStore({ path: join(dir, "other.db") });
    await c.migrate();
    expect((await loadChallengeKey(c, random)).equals(ka)).toBe(false);
    await c.close();
  });
});

const pgDb = useTestDatabase();

/** A CA on the given backend, and a way to count its rows per table past the server. */
async function caOn(backend: "sqlite" | "postgres") {
  if (backend === "sqlite") {
    const ca = await startTestCa();
    return {
      ca,
      async rowCounts(): Promise<Record<string, number>> {
        const db = new Database(join(ca.dir, "data", "mayfly.db"), { readonly: true });
        try {
          const tables = db
            .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
            .all() as { name: string }[];
          return Object.fromEntries(
            tables.map(({ name }) => [
              name,
              (db.prepare(`SELECT COUNT(*) AS n FROM "${name}"`).get() as { n: number }).n,
            ]),
          );
        } finally {
          db.close();
        }
      },
    };
  }
  const url = await pgDb().freshSchemaUrl();
  const ca = await startTestCa(`${TEST_CONFIG}store:\n  url: ${JSON.stringify(url)}\n`);
  return {
    ca,
    async rowCounts(): Promise<Record<string, number>> {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        const tables = await c.query<{ name: string }>(
          "SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()",
        );
        const counts: Record<string, number> = {};
        for (const { name } of tables.rows) {
          counts[name] = Number((await c.query(`SELECT COUNT(*) AS n FROM "${name}"`)).rows[0].n);
        }
        return counts;
      } finally {
        await c.end();
      }
    },
  };
}

describe.each(["sqlite", "postgres"] as const)("challenges through the server (%s)", (backend) => {
  let ca: TestCa;
  let other: TestCa;
  let rowCounts: () => Promise<Record<string, number>>;
  beforeAll(async () => {
    const mine = await caOn(backend);
    ca = mine.ca;
    rowCounts = mine.rowCounts;
    other = await startTestCa();
  });
  afterAll(async () => {
    await Promise.all([ca?.close(), other?.close()]);
  });

  async function mint(agent: TestAgent, at: TestCa = ca): Promise<Buffer> {
    const ch = await at.call(`/v1/agents/${agent.agentId}/challenges`, {});
    expect(ch.status).toBe(201);
    return Buffer.from((ch.json as { nonce: string }).nonce, "base64url");
  }

  async function redeem(agent: TestAgent, nonce: Buffer, as: TestAgent = agent) {
    const k = await newAgentKey();
    return ca.call(`/v1/agents/${as.agentId}/certificates`, {
      csr: k.csrDer.toString("base64url"),
      nonce: nonce.toString("base64url"),
      attestation: attest(as.deviceKey, nonce, k.spki),
    });
  }

  /** A refusal: the code, exactly one audit event (a deny with that code), nothing else written. */
  async function expectRefused(p: () => Promise<HttpResult>, code: string) {
    const before = await rowCounts();
    const res = await p();
    expect((res.json as { code: string }).code).toBe(code);
    expect(res.status).toBeGreaterThanOrEqual(400);
    const after = await rowCounts();
    expect(after).toEqual({ ...before, audit_events: before.audit_events! + 1 });
    const events = await ca.running.store.tx((tx) => tx.listAuditEvents(1, 1_000_000));
    expect(events.at(-1)).toMatchObject({ decision: "deny", code });
    return { res, event: events.at(-1)! };
  }

  it("writes nothing when it hands out a challenge, and has no challenges table", async () => {
    const agent = await ca.seedAgent();
    const before = await rowCounts();
    expect(before.certificates).toBeDefined();
    expect(before.challenges).toBeUndefined();
    for (let i = 0; i < 5; i++) await mint(agent);
    expect(await rowCounts()).toEqual(before);
  });

  it("refuses an unknown agent with agent.not_found, audited once, nothing else written", async () => {
    await expectRefused(() => ca.call("/v1/agents/nobody/challenges", {}), "agent.not_found");
  });

  it("records a redemption as the certificate row carrying the nonce, and no other row", async () => {
    const agent = await ca.seedAgent();
    const nonce = await mint(agent);
    const before = await rowCounts();
    expect((await redeem(agent, nonce)).status).toBe(201);
    const after = await rowCounts();
    // The certificate and the allow event (the agent's lastIssuedAt is an update).
    expect(after).toEqual({
      ...before,
      certificates: before.certificates! + 1,
      audit_events: before.audit_events! + 1,
    });
    const certs = await ca.running.store.tx((tx) => tx.listCertificatesByAgent(agent.agentId));
    expect(certs).toHaveLength(1);
    expect(certs[0]!.challengeNonce?.equals(nonce)).toBe(true);
    expect(certs[0]!.createdAt).toBe(ca.clock.now());
  });

  it.each(REGIONS)(
    "refuses a nonce with a byte of the %s flipped: challenge.not_found",
    async (_, from, to) => {
      const agent = await ca.seedAgent();
      const nonce = await mint(agent);
      const bad = Buffer.from(nonce);
      bad[from + Math.floor((to - from) / 2)]! ^= 0x10;
      await expectRefused(() => redeem(agent, bad), "challenge.not_found");
      // The untouched nonce still works: the refusal consumed nothing.
      expect((await redeem(agent, nonce)).status).toBe(201);
    },
  );

  it("refuses agent A's nonce presented by agent B: challenge.agent_mismatch, and A can still use it", async () => {
    const a = await ca.seedAgent();
    const b = await ca.seedAgent();
    const nonce = await mint(a);
    await expectRefused(() => redeem(a, nonce, b), "challenge.agent_mismatch");
    expect((await redeem(a, nonce)).status).toBe(201);
  });

  it("refuses a replay: challenge.consumed, the same problem and deny event as before, nothing else written", async () => {
    const agent = await ca.seedAgent();
    const { res, nonce } = await issueVia(ca, agent);
    expect(res.status).toBe(201);
    const { res: again, event } = await expectRefused(() => redeem(agent, nonce), "challenge.consumed");
    // Byte for byte what the redeemed-challenge row's primary key used to answer (on
    // SQLite; PostgreSQL's detail also named the insert, "insertChallenge: ...").
    expect(again.status).toBe(400);
    expect(again.headers["content-type"]).toBe("application/problem+json; charset=utf-8");
    expect(again.json).toEqual({
      type: "urn:mayfly:problem:challenge.consumed",
      title: "The challenge was already used",
      status: 400,
      detail: "the challenge was already used",
      code: "challenge.consumed",
      field: "nonce",
      instance: `/v1/agents/${agent.agentId}/certificates`,
    });
    expect(event).toMatchObject({
      type: "certificate.issue",
      decision: "deny",
      code: "challenge.consumed",
      actor: `agent:${agent.agentId}`,
      subject: `agent:${agent.agentId}`,
      data: { nonce: nonce.toString("base64url"), detail: "the challenge was already used", field: "nonce" },
    });
  });

  it("gives exactly one certificate for one nonce redeemed many times at once", async () => {
    const agent = await ca.seedAgent();
    const nonce = await mint(agent);
    const key = await newAgentKey();
    const body = {
      csr: key.csrDer.toString("base64url"),
      nonce: nonce.toString("base64url"),
      attestation: attest(agent.deviceKey, nonce, key.spki),
    };
    const before = await rowCounts();
    const results = await Promise.all(
      Array.from({ length: 8 }, () => ca.call(`/v1/agents/${agent.agentId}/certificates`, body)),
    );
    const codes = results.map((r) => (r.status === 201 ? "issued" : (r.json as { code: string }).code));
    expect(codes.filter((c) => c === "issued")).toHaveLength(1);
    expect(codes.filter((c) => c === "challenge.consumed")).toHaveLength(7);
    const after = await rowCounts();
    expect(after.certificates).toBe(before.certificates! + 1);
    expect(after.audit_events).toBe(before.audit_events! + 8);
    const certs = await ca.running.store.tx((tx) => tx.listCertificatesByAgent(agent.agentId));
    expect(certs.map((c) => c.challengeNonce?.toString("hex"))).toEqual([nonce.toString("hex")]);
    await assertAuditChain(ca.running.store);
  });

  it("expires at the injected clock's expiresAt: 1 ms before issues, at it is challenge.expired", async () => {
    const agent = await ca.seedAgent();
    const ttl = 60_000; // issuance.challengeTtl's default (TEST_CONFIG sets none)
    const early = await mint(agent);
    const edge = await mint(agent);
    expect(early.readUIntBE(12, 6)).toBe(ca.clock.now() + ttl);
    const start = ca.clock.now();
    try {
      ca.clock.advance(ttl - 1);
      expect((await redeem(agent, early)).status).toBe(201);
      ca.clock.advance(1);
      await expectRefused(() => redeem(agent, edge), "challenge.expired");
    } finally {
      ca.clock.set(start);
    }
  });

  it("refuses a nonce another CA minted (another key) as challenge.not_found, even for the same agent id", async () => {
    const mine = await ca.seedAgent();
    // The same agent id at the other CA (its own owner and device).
    const twin = await other.seedAgent({ agent: { id: mine.agentId }, binding: { agentId: mine.agentId } });
    const foreign = await mint({ ...twin, agentId: mine.agentId }, other);
    await expectRefused(() => redeem(mine, foreign), "challenge.not_found");
  });
});
