import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueVia } from "../helpers/test-ca.js";
import { OTHER_CLIENT } from "../owners/helpers/idp.js";
import { asTestAgent, expectOwnerDeny, inDays, type OwnersCa, startOwnersCa } from "./helpers.js";

// Agent registration and the owner API through HTTPS, with ID tokens from the real
// provider: every rule has its code, every deny is one audit event and nothing else.

let o: OwnersCa;
beforeAll(async () => {
  o = await startOwnersCa("agents:\n  transferTtl: 1m\n");
});
afterAll(async () => {
  await o?.close();
});

type AgentJson = {
  agentId: string;
  spiffeId: string;
  ownerId: string;
  status: string;
  expiresAt: string;
  binding: {
    tokenIssuer: string;
    tokenSubject: string;
    authTime: string;
    affirmedAt: string;
    expiresAt: string;
  };
};

async function register(account: string, body: Record<string, unknown>, tokenOpts = {}) {
  return o.api("POST", "/v1/agents", await o.token(account, tokenOpts), body);
}

describe("agent registration", () => {
  it("registers with a fresh login: SPIFFE ID, owner from the claims, binding from the token", async () => {
    const dev = await o.device();
    const expiresAt = inDays(o.ca, 30);
    const res = await register("alice", {
      name: "builder",
      deviceId: dev.deviceId,
      purpose: "nightly builds",
      expiresAt,
    });
    expect(res.status, res.text).toBe(201);
    const a = res.json as AgentJson;
    expect(a.spiffeId).toBe(`spiffe://mayfly.internal/agent/${a.agentId}`);
    expect(a.status).toBe("active");
    expect(a.expiresAt).toBe(expiresAt);
    expect(a.binding).toMatchObject({ tokenIssuer: o.idp.issuer, tokenSubject: "alice", expiresAt });
    expect(Date.parse(a.binding.affirmedAt)).toBe(o.ca.clock.now());
    const owner = await o.ca.running.store.tx((tx) => tx.getOwner(a.ownerId));
    expect(owner).toMatchObject({
      issuer: o.idp.issuer,
      subject: "alice",
      email: "alice@example.test",
      groups: ["eng"],
    });
    const events = (await o.audit()).slice(-2);
    expect(events.map((e) => e.type)).toEqual(["owner.create", "agent.register"]);
    expect(events[1]).toMatchObject({
      actor: `owner:${a.ownerId}`,
      subject: `agent:${a.agentId}`,
      decision: "allow",
    });

    // The agent gets certificates whose notAfter never passes its purpose end.
    const { res: issued } = await issueVia(o.ca, asTestAgent(a.agentId, a.ownerId, dev));
    expect(issued.status, issued.text).toBe(201);
    const listed = await o.api("GET", "/v1/agents", await o.token("alice"));
    expect((listed.json as { agents: AgentJson[] }).agents.map((x) => x.agentId)).toEqual([a.agentId]);
  });

  it("caps certificate notAfter at the registered expiresAt", async () => {
    const dev = await o.device();
    const expiresAt = new Date(o.ca.clock.now() + 2 * 60_000 + 500).toISOString();
    const res = await register("bea", {
      name: "short-lived",
      deviceId: dev.deviceId,
      purpose: "one job",
      expiresAt,
    });
    expect(res.status, res.text).toBe(201);
    const a = res.json as AgentJson;
    const { res: issued } = await issueVia(o.ca, asTestAgent(a.agentId, a.ownerId, dev));
    expect(issued.status, issued.text).toBe(201);
    const notAfter = Date.parse((issued.json as { notAfter: string }).notAfter);
    expect(notAfter).toBeLessThanOrEqual(Date.parse(expiresAt));
    expect(notAfter).toBe(Date.parse(expiresAt) - (Date.parse(expiresAt) % 1000));
  });

  it("refuses each broken rule with its code, one audit event, nothing written", async () => {
    const dev = await o.device();
    const ok = { name: "x", deviceId: dev.deviceId, purpose: "p", expiresAt: inDays(o.ca, 10) };
    const fresh = await o.token("carl");
    const post = (token: string | null, body: unknown) => () => o.api("POST", "/v1/agents", token, body);

    await expectOwnerDeny(o, post(null, ok), "token.missing", 401);
    await expectOwnerDeny(o, post("garbage", ok), "token.malformed", 401);
    await expectOwnerDeny(
      o,
      post(await o.token("carl", { clientId: OTHER_CLIENT }), ok),
      "token.audience_mismatch",
      401,
    );
    await expectOwnerDeny(
      o,
      post(await o.token("carl", { authAgeSeconds: 11 * 60 }), ok),
      "token.auth_stale",
      401,
    );
    const [h, p] = fresh.split(".");
    const hs = Buffer.from(JSON.stringify({ alg: "HS256" })).toString("base64url");
    const sig = createHmac("sha256", "k").update(`${hs}.${p}`).digest("base64url");
    await expectOwnerDeny(o, post(`${hs}.${p}.${sig}`, ok), "token.algorithm_not_allowed", 401);
    await expectOwnerDeny(o, post(`${h}.${p}.`, ok), "token.signature_invalid", 401);

    await expectOwnerDeny(o, post(fresh, { ...ok, expiresAt: undefined }), "request.invalid", 400);
    await expectOwnerDeny(o, post(fresh, { ...ok, purpose: " " }), "request.invalid", 400);
    await expectOwnerDeny(
      o,
      post(fresh, { ...ok, expiresAt: inDays(o.ca, -1) }),
      "agent.expiry_invalid",
      400,
    );
    await expectOwnerDeny(
      o,
      post(fresh, { ...ok, expiresAt: inDays(o.ca, 91) }),
      "agent.expiry_invalid",
      400,
    );
    await expectOwnerDeny(
      o,
      post(fresh, { ...ok, profile: "short", expiresAt: inDays(o.ca, 1) }),
      "agent.expiry_invalid",
    );
    await expectOwnerDeny(o, post(fresh, { ...ok, profile: "nope" }), "profile.unknown", 400);
    await expectOwnerDeny(o, post(fresh, { ...ok, deviceId: "ghost" }), "device.not_found", 403);
    const bare = await o.device({ akPublic: null });
    await expectOwnerDeny(o, post(fresh, { ...ok, deviceId: bare.deviceId }), "device.not_activated", 403);
    const gone = await o.device({ status: "unenrolled" });
    await expectOwnerDeny(o, post(fresh, { ...ok, deviceId: gone.deviceId }), "device.unenrolled", 403);
    const elsewhere = await o.device({ assignedOwnerId: "someone-else" });
    await expectOwnerDeny(
      o,
      post(fresh, { ...ok, deviceId: elsewhere.deviceId, profile: "assigned" }),
      "device.not_assigned",
      403,
    );

    // The same name twice for one owner is store.conflict; another owner may use it.
    const first = await o.api("POST", "/v1/agents", fresh, { ...ok, name: "twin" });
    expect(first.status, first.text).toBe(201);
    await expectOwnerDeny(o, post(fresh, { ...ok, name: "twin" }), "store.conflict", 409);
    expect((await register("dora", { ...ok, name: "twin" })).status).toBe(201);
  });

  it("a device assigned to the owner is accepted where the profile asks for it", async () => {
    const login = await o.api("GET", "/v1/owners/me", await o.token("erin"));
    const ownerId = (login.json as { ownerId: string }).ownerId;
    const dev = await o.device({ assignedOwnerId: ownerId });
    const res = await register("erin", {
      name: "pinned",
      deviceId: dev.deviceId,
      purpose: "p",
      expiresAt: inDays(o.ca, 5),
      profile: "assigned",
    });
    expect(res.status, res.text).toBe(201);
  });

  it("an owner SCIM deactivated cannot register (owner.inactive)", async () => {
    o.idp.accounts.set("fred", { email: "fred@example.test" });
    const created = await o.scim("POST", "/Users", {
      schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
      userName: "fred@example.test",
      externalId: "fred",
      active: false,
    });
    expect(created.status, created.text).toBe(201);
    const dev = await o.device();
    await expectOwnerDeny(
      o,
      async () =>
        register("fred", { name: "n", deviceId: dev.deviceId, purpose: "p", expiresAt: inDays(o.ca, 1) }),
      "owner.inactive",
      403,
    );
  });
});

describe("re-affirmation, kill switch and transfers", () => {
  async function registered(account: string, name: string) {
    const dev = await o.device();
    const res = await register(account, {
      name,
      deviceId: dev.deviceId,
      purpose: "p",
      expiresAt: inDays(o.ca, 60),
    });
    expect(res.status, res.text).toBe(201);
    const a = res.json as AgentJson;
    return { a, agent: asTestAgent(a.agentId, a.ownerId, dev) };
  }

  it("kill switch: every agent suspended at once, denied agent.inactive; a fresh re-affirmation revives them", async () => {
    const one = await registered("gina", "one");
    const two = await registered("gina", "two");
    expect((await issueVia(o.ca, one.agent)).res.status).toBe(201);
    // Any valid login pulls the switch, even one that is not fresh.
    const kill = await o.api("POST", "/v1/owners/me/kill", await o.token("gina", { authAgeSeconds: 3600 }));
    expect(kill.status, kill.text).toBe(200);
    expect((kill.json as { suspended: string[] }).suspended.sort()).toEqual(
      [one.a.agentId, two.a.agentId].sort(),
    );
    for (const x of [one, two]) {
      const { res } = await issueVia(o.ca, x.agent);
      expect((res.json as { code: string }).code).toBe("agent.inactive");
    }
    const events = await o.audit();
    expect(
      events.filter((e) => e.type === "agent.suspend" && e.actor === `owner:${one.a.ownerId}`),
    ).toHaveLength(2);

    // Re-affirming needs a fresh login.
    await expectOwnerDeny(
      o,
      async () => o.api("POST", "/v1/owners/me/affirm", await o.token("gina", { authAgeSeconds: 3600 })),
      "token.auth_stale",
    );
    const affirmed = await o.api("POST", "/v1/owners/me/affirm", await o.token("gina"));
    expect(affirmed.status, affirmed.text).toBe(200);
    expect((affirmed.json as { affirmed: string[] }).affirmed).toHaveLength(2);
    expect((await issueVia(o.ca, two.agent)).res.status).toBe(201);
  });

  it("an owner may act only on their own agents (owner.mismatch)", async () => {
    const h = await registered("hal", "mine");
    await expectOwnerDeny(
      o,
      async () => o.api("POST", `/v1/agents/${h.a.agentId}/affirm`, await o.token("ivy")),
      "owner.mismatch",
      403,
    );
  });

  it("transfer: offered by the owner, accepted by the named recipient with a fresh login", async () => {
    const j = await registered("jo", "handover");
    const kai = await o.api("GET", "/v1/owners/me", await o.token("kai"));
    const kaiId = (kai.json as { ownerId: string }).ownerId;
    await expectOwnerDeny(
      o,
      async () =>
        o.api("POST", `/v1/agents/${j.a.agentId}/transfers`, await o.token("jo"), { toOwnerId: "ghost" }),
      "transfer.invalid",
    );
    const offer = await o.api("POST", `/v1/agents/${j.a.agentId}/transfers`, await o.token("jo"), {
      toOwnerId: kaiId,
    });
    expect(offer.status, offer.text).toBe(201);
    const transferId = (offer.json as { transferId: string }).transferId;

    await expectOwnerDeny(
      o,
      async () => o.api("POST", `/v1/transfers/${transferId}/accept`, await o.token("lee")),
      "transfer.not_recipient",
    );
    await expectOwnerDeny(
      o,
      async () =>
        o.api("POST", `/v1/transfers/${transferId}/accept`, await o.token("kai", { authAgeSeconds: 900 })),
      "token.auth_stale",
    );
    await expectOwnerDeny(
      o,
      async () => o.api("POST", "/v1/transfers/nope/accept", await o.token("kai")),
      "transfer.not_found",
      404,
    );
    const accepted = await o.api("POST", `/v1/transfers/${transferId}/accept`, await o.token("kai"));
    expect(accepted.status, accepted.text).toBe(200);
    expect(accepted.json).toMatchObject({ agentId: j.a.agentId, ownerId: kaiId, status: "active" });
    const binding = await o.ca.running.store.tx((tx) => tx.getBinding(j.a.agentId));
    expect(binding).toMatchObject({ ownerId: kaiId, tokenSubject: "kai" });
    await expectOwnerDeny(
      o,
      async () => o.api("POST", `/v1/transfers/${transferId}/accept`, await o.token("kai")),
      "transfer.closed",
      409,
    );
    // The new owner's agent issues; the old owner no longer owns it.
    const { res } = await issueVia(o.ca, { ...j.agent, ownerId: kaiId });
    expect(res.status, res.text).toBe(201);
    await expectOwnerDeny(
      o,
      async () => o.api("POST", `/v1/agents/${j.a.agentId}/affirm`, await o.token("jo")),
      "owner.mismatch",
    );
  });

  it("a transfer offer expires (transfer.expired)", async () => {
    const m = await registered("mo", "slow");
    const nia = await o.api("GET", "/v1/owners/me", await o.token("nia"));
    const offer = await o.api("POST", `/v1/agents/${m.a.agentId}/transfers`, await o.token("mo"), {
      toOwnerId: (nia.json as { ownerId: string }).ownerId,
    });
    const transferId = (offer.json as { transferId: string }).transferId;
    o.ca.clock.advance(60_000);
    await expectOwnerDeny(
      o,
      async () => o.api("POST", `/v1/transfers/${transferId}/accept`, await o.token("nia")),
      "transfer.expired",
      410,
    );
  });
});

describe("administrators", () => {
  it("nothing under /v1/admin answers without a login in owners.adminGroup", async () => {
    await expectOwnerDeny(o, () => o.api("GET", "/v1/admin/agents", null), "token.missing", 401);
    await expectOwnerDeny(
      o,
      async () => o.api("GET", "/v1/admin/agents", await o.token("pat")),
      "admin.required",
      403,
    );
    await expectOwnerDeny(
      o,
      async () => o.api("POST", "/v1/admin/agents/x/suspend", await o.token("pat")),
      "admin.required",
      403,
    );
  });

  it("an admin's hold is one the owner cannot lift; the admin can, with a fresh login", async () => {
    o.idp.accounts.set("root", { email: "root@example.test", groups: ["mayfly-admins"] });
    const dev = await o.device();
    const reg = await register("quinn", {
      name: "held",
      deviceId: dev.deviceId,
      purpose: "p",
      expiresAt: inDays(o.ca, 9),
    });
    const a = reg.json as AgentJson;
    const agent = asTestAgent(a.agentId, a.ownerId, dev);
    const held = await o.api(
      "POST",
      `/v1/admin/agents/${a.agentId}/suspend`,
      await o.token("root", { authAgeSeconds: 3600 }),
    );
    expect(held.status, held.text).toBe(200);
    expect(held.json).toMatchObject({ status: "suspended", statusReason: "admin" });
    expect((await o.audit()).at(-1)).toMatchObject({
      type: "agent.suspend",
      actor: expect.stringMatching(/^admin:/),
    });
    expect(((await issueVia(o.ca, agent)).res.json as { code: string }).code).toBe("agent.inactive");
    await expectOwnerDeny(
      o,
      async () => o.api("POST", `/v1/agents/${a.agentId}/affirm`, await o.token("quinn")),
      "admin.required",
    );
    await expectOwnerDeny(
      o,
      async () =>
        o.api(
          "POST",
          `/v1/admin/agents/${a.agentId}/resume`,
          await o.token("root", { authAgeSeconds: 3600 }),
        ),
      "token.auth_stale",
    );
    const resumed = await o.api("POST", `/v1/admin/agents/${a.agentId}/resume`, await o.token("root"));
    expect(resumed.json).toMatchObject({ status: "active" });
    expect((await issueVia(o.ca, agent)).res.status).toBe(201);
    const list = await o.api("GET", "/v1/admin/agents?zombies=true", await o.token("root"));
    expect(list.status, list.text).toBe(200);
    expect(Array.isArray((list.json as { zombies: unknown[] }).zombies)).toBe(true);
  });
});
