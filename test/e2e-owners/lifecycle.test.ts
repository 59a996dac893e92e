import { readFileSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/index.js";
import { attest, issueVia, newAgentKey, type TestAgent } from "../helpers/test-ca.js";
import { asTestAgent, inDays, type OwnersCa, startOwnersCa } from "./helpers.js";

// Joiner, leaver, mover, end to end: SCIM provisions a person, they log in at the real
// IdP and register an agent, the agent gets certificates; then the IdP's SCIM client
// says the person left or moved, and the very next issuance is denied.

let o: OwnersCa;
beforeAll(async () => {
  o = await startOwnersCa();
});
afterAll(async () => {
  await o?.close();
});

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/scim/${name}`, import.meta.url), "utf8")) as Record<
    string,
    unknown
  >;

/** SCIM-provisions `account` (externalId = the IdP subject), Entra-shaped; returns the SCIM id. */
async function provision(account: string, ext: Record<string, unknown> = {}): Promise<string> {
  o.idp.accounts.set(account, { email: `${account}@example.test`, name: account });
  const res = await o.scim("POST", "/Users", {
    ...fixture("entra/create-user.json"),
    userName: `${account}@example.test`,
    externalId: account,
    emails: [{ primary: true, type: "work", value: `${account}@example.test` }],
    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": ext,
  });
  expect(res.status, res.text).toBe(201);
  return (res.json as { id: string }).id;
}

async function registerAgent(account: string, name: string): Promise<TestAgent> {
  const dev = await o.device();
  const res = await o.api("POST", "/v1/agents", await o.token(account), {
    name,
    deviceId: dev.deviceId,
    purpose: "lifecycle test",
    expiresAt: inDays(o.ca, 30),
  });
  expect(res.status, res.text).toBe(201);
  const a = res.json as { agentId: string; ownerId: string };
  return asTestAgent(a.agentId, a.ownerId, dev);
}

async function issueCode(agent: TestAgent): Promise<string> {
  const { res } = await issueVia(o.ca, agent);
  return res.status === 201 ? "issued" : (res.json as { code: string }).code;
}

const patchOp = (ops: unknown[]) => ({
  schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  Operations: ops,
});

describe("leaver", () => {
  it('a SCIM PATCH "active": "False" makes the next issuance fail owner.inactive; measured end to end', async () => {
    const scimId = await provision("leah");
    const agent = await registerAgent("leah", "worker");
    expect(await issueCode(agent)).toBe("issued");

    // Prepared before the leaver event so the measurement is SCIM write -> first deny.
    const key = await newAgentKey();
    const ch = await o.ca.call(`/v1/agents/${agent.agentId}/challenges`, {});
    const nonce = Buffer.from((ch.json as { nonce: string }).nonce, "base64url");
    const t0 = performance.now();
    const off = await o.scim("PATCH", `/Users/${scimId}`, fixture("entra/disable.json"));
    const tScim = performance.now();
    const denied = await o.ca.call(`/v1/agents/${agent.agentId}/certificates`, {
      csr: key.csrDer.toString("base64url"),
      nonce: nonce.toString("base64url"),
      attestation: attest(agent.deviceKey, nonce, key.spki),
    });
    const t1 = performance.now();
    expect(off.status, off.text).toBe(200);
    expect(denied.status).toBe(403);
    expect((denied.json as { code: string }).code).toBe("owner.inactive");
    console.log(
      `leaver-to-first-deny: ${(t1 - t0).toFixed(1)} ms end to end (SCIM PATCH ${(tScim - t0).toFixed(1)} ms, then the denied issuance ${(t1 - tScim).toFixed(1)} ms)`,
    );
    expect(t1 - t0).toBeLessThan(5_000);

    const events = await o.audit();
    const leave = events.find((e) => e.type === "owner.leave" && e.subject === `owner:${agent.ownerId}`);
    expect(leave).toMatchObject({ actor: "scim", decision: "allow" });
    expect(
      events.find((e) => e.type === "agent.suspend" && e.subject === `agent:${agent.agentId}`)?.data,
    ).toMatchObject({ reason: "owner.left" });
    const deny = events.at(-1)!;
    expect(deny).toMatchObject({ type: "certificate.issue", decision: "deny", code: "owner.inactive" });
    expect(deny.seq).toBeGreaterThan(leave!.seq);

    // The owner comes back: still stopped (suspended) until a fresh re-affirmation.
    expect((await o.scim("PATCH", `/Users/${scimId}`, fixture("entra/enable.json"))).status).toBe(200);
    expect(await issueCode(agent)).toBe("agent.inactive");
    const affirm = await o.api("POST", `/v1/agents/${agent.agentId}/affirm`, await o.token("leah"));
    expect(affirm.status, affirm.text).toBe(200);
    expect(await issueCode(agent)).toBe("issued");
  });

  it("Okta's deactivation (replace without path) and a SCIM DELETE stop agents the same way", async () => {
    const oktaId = await provision("olga");
    const a = await registerAgent("olga", "o1");
    expect((await o.scim("PATCH", `/Users/${oktaId}`, fixture("okta/deactivate.json"))).status).toBe(200);
    expect(await issueCode(a)).toBe("owner.inactive");

    const delId = await provision("dan");
    const d = await registerAgent("dan", "d1");
    expect(await issueCode(d)).toBe("issued");
    expect((await o.scim("DELETE", `/Users/${delId}`)).status).toBe(204);
    expect(await issueCode(d)).toBe("owner.inactive");
    const owner = await o.ca.running.store.tx((tx) => tx.getOwner(d.ownerId));
    expect(owner?.status).toBe("deprovisioned");
    // A deprovisioned owner cannot log in to register or re-affirm.
    const res = await o.api("POST", `/v1/agents/${d.agentId}/affirm`, await o.token("dan"));
    expect((res.json as { code: string }).code).toBe("owner.inactive");
  });

  it("the race: 50 issuances in flight while the owner is deactivated; none is issued after the deactivation commits", async () => {
    const scimId = await provision("rae");
    const agents = await Promise.all([0, 1, 2, 3, 4].map((i) => registerAgent("rae", `r${i}`)));
    const prepared = await Promise.all(
      Array.from({ length: 50 }, async (_, i) => {
        const agent = agents[i % agents.length]!;
        const key = await newAgentKey();
        const ch = await o.ca.call(`/v1/agents/${agent.agentId}/challenges`, {});
        const nonce = Buffer.from((ch.json as { nonce: string }).nonce, "base64url");
        return {
          agent,
          body: {
            csr: key.csrDer.toString("base64url"),
            nonce: nonce.toString("base64url"),
            attestation: attest(agent.deviceKey, nonce, key.spki),
          },
        };
      }),
    );
    const inflight = prepared.map((p, i) =>
      new Promise((r) => setTimeout(r, i % 10)).then(() =>
        o.ca.call(`/v1/agents/${p.agent.agentId}/certificates`, p.body),
      ),
    );
    const leaver = new Promise((r) => setTimeout(r, 4)).then(() =>
      o.scim("PATCH", `/Users/${scimId}`, fixture("entra/disable.json")),
    );
    const [results, off] = await Promise.all([Promise.all(inflight), leaver]);
    expect(off.status).toBe(200);
    const issued = results.filter((r) => r.status === 201).length;
    const denied = results.filter((r) => r.status !== 201);
    for (const d of denied)
      expect(["owner.inactive", "agent.inactive"]).toContain((d.json as { code: string }).code);
    expect(issued + denied.length).toBe(50);

    const ids = new Set(agents.map((a) => `agent:${a.agentId}`));
    const events = await o.audit();
    const leave = events.find(
      (e) => e.type === "owner.leave" && e.subject === `owner:${agents[0]!.ownerId}`,
    )!;
    const allows = events.filter(
      (e) => e.type === "certificate.issue" && e.decision === "allow" && ids.has(e.subject!),
    );
    expect(allows).toHaveLength(issued);
    for (const e of allows) expect(e.seq).toBeLessThan(leave.seq);
    const certs = await o.ca.running.store.tx(async (tx) =>
      (await Promise.all(agents.map((a) => tx.listCertificatesByAgent(a.agentId)))).flat(),
    );
    expect(certs).toHaveLength(issued);
    console.log(`race: ${issued} issued before the leaver committed, ${denied.length} denied after`);
    expect((await verifyAuditChain(o.ca.running.store)).ok).toBe(true);
  });
});

describe("mover", () => {
  it("a first manager is provisioning; a changed manager quarantines; transfer or re-affirmation revives", async () => {
    const scimId = await provision("max", { department: "R&D" });
    const keep = await registerAgent("max", "keep");
    const give = await registerAgent("max", "give");
    // null -> a manager: not a move.
    expect((await o.scim("PATCH", `/Users/${scimId}`, fixture("entra/manager-add.json"))).status).toBe(200);
    expect(await issueCode(keep)).toBe("issued");

    // The manager changes (Entra: a bare id string): both agents quarantined.
    const move = patchOp([
      {
        op: "Replace",
        path: "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
        value: "new-manager-id",
      },
    ]);
    expect((await o.scim("PATCH", `/Users/${scimId}`, move)).status).toBe(200);
    const { res } = await issueVia(o.ca, keep);
    expect((res.json as { code: string; detail: string }).code).toBe("agent.inactive");
    expect((res.json as { detail: string }).detail).toMatch(/quarantined \(owner\.moved\)/);
    expect(await issueCode(give)).toBe("agent.inactive");
    const moved = (await o.audit()).find(
      (e) => e.type === "owner.move" && e.subject === `owner:${keep.ownerId}`,
    );
    expect(moved?.data).toMatchObject({
      moved: [{ attribute: "manager", from: "26118915-6090-4610-87a4-49d0767e9fde" }],
    });

    // One agent the owner keeps: a fresh re-affirmation.
    const affirm = await o.api("POST", `/v1/agents/${keep.agentId}/affirm`, await o.token("max"));
    expect(affirm.status, affirm.text).toBe(200);
    expect(await issueCode(keep)).toBe("issued");
    // The other goes to a colleague, who accepts with a fresh login.
    const nel = await o.api("GET", "/v1/owners/me", await o.token("nel"));
    const nelId = (nel.json as { ownerId: string }).ownerId;
    const offer = await o.api("POST", `/v1/agents/${give.agentId}/transfers`, await o.token("max"), {
      toOwnerId: nelId,
    });
    expect(offer.status, offer.text).toBe(201);
    expect(await issueCode(give)).toBe("agent.inactive"); // still quarantined until accepted
    const acc = await o.api(
      "POST",
      `/v1/transfers/${(offer.json as { transferId: string }).transferId}/accept`,
      await o.token("nel"),
    );
    expect(acc.status, acc.text).toBe(200);
    expect(await issueCode({ ...give, ownerId: nelId })).toBe("issued");

    // A department change is a move too (owners.moverAttributes).
    const dept = patchOp([
      {
        op: "replace",
        value: { "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department": "Sales" },
      },
    ]);
    expect((await o.scim("PATCH", `/Users/${scimId}`, dept)).status).toBe(200);
    expect(await issueCode(keep)).toBe("agent.inactive");
  });
});
