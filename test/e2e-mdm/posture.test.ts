import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueVia, type TestAgent, type TestCa } from "../helpers/test-ca.js";
import {
  auditHead,
  auditSince,
  expectAccepted,
  jwks,
  type MdmKey,
  mdmKey,
  signed,
  startMdmCa,
  tempDir,
} from "./helpers.js";

// Device posture at every issuance (issue 8), with events signed by a key from a JWKS file:
// the "managed" profile asks for a managed, compliant device assigned to the agent's owner,
// reported on within the last hour; "default" asks for nothing. A renewal is a full
// issuance, so each step below is the next renewal of a running agent.

describe("device posture at every issuance", () => {
  let ca: TestCa;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let key: MdmKey;

  beforeAll(async () => {
    key = await mdmKey("ES256");
    tmp = await tempDir();
    const path = await tmp.file("jwks.json", JSON.stringify(jwks(key)));
    ca = await startMdmCa(`  jwksFile: "${path}"`);
  });
  afterAll(async () => {
    await ca?.close();
    await tmp?.close();
  });

  /** One event, a second after the last (iat is the event time), applied. */
  async function mdm(claims: Record<string, unknown>) {
    ca.clock.advance(1_000);
    return expectAccepted(ca, await signed(ca, key, claims));
  }
  /** "issued", or the code of the refusal (which issue.ts audits as certificate.issue). */
  async function renew(agent: TestAgent): Promise<string> {
    const { res } = await issueVia(ca, agent);
    if (res.status === 201) return "issued";
    expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
    return (res.json as { code: string }).code;
  }
  const ekHex = async (deviceId: string) =>
    (await ca.running.store.tx((tx) => tx.getDevice(deviceId)))!.ekPubHash!.toString("hex");
  const agentOf = (id: string) => ca.running.store.tx((tx) => tx.getAgent(id));

  it("a compliance flip mid-run: the next renewal is denied; back to compliant, allowed again", async () => {
    const agent = await ca.seedAgent({ agent: { profile: "managed" } });
    // Before the MDM has said anything about the device.
    expect(await renew(agent)).toBe("device.not_managed");
    // The MDM enrols it, naming the TPM by its EK hash: Mayfly adopts the device it knows.
    const out = await mdm({
      type: "device.enrolled",
      mdmId: "mac-flip",
      ekPubHash: await ekHex(agent.deviceId),
      assignedUser: `OWNER${agent.ownerId.slice("owner-".length)}@EXAMPLE.TEST`, // email, any case
      compliant: true,
    });
    expect(out).toMatchObject({ deviceId: agent.deviceId, created: false });
    expect(await renew(agent)).toBe("issued");

    await mdm({
      type: "device.compliance_changed",
      mdmId: "mac-flip",
      compliant: false,
      reason: "FileVault off",
    });
    const mark = await auditHead(ca);
    const { res } = await issueVia(ca, agent);
    expect(res.status).toBe(403);
    expect(res.json).toMatchObject({ code: "device.non_compliant" });
    expect((res.json as { detail: string }).detail).toContain("FileVault off");
    const denies = (await auditSince(ca, mark)).filter((e) => e.decision === "deny");
    expect(denies.map((e) => [e.type, e.code])).toEqual([["certificate.issue", "device.non_compliant"]]);

    await mdm({ type: "device.compliance_changed", mdmId: "mac-flip", compliant: true });
    expect(await renew(agent)).toBe("issued");
    // An agent on a profile without posture rules is not affected by any of it.
    const plain = await ca.seedAgent();
    expect(await renew(plain)).toBe("issued");
  });

  it("posture older than maxPostureAge is device.posture_stale until the MDM reports again", async () => {
    const agent = await ca.seedAgent({ agent: { profile: "managed" } });
    await mdm({
      type: "device.enrolled",
      mdmId: "mac-stale",
      ekPubHash: await ekHex(agent.deviceId),
      assignedUser: "sub-" + agent.ownerId.slice("owner-".length), // the owner's IdP subject
      compliant: true,
    });
    expect(await renew(agent)).toBe("issued");
    ca.clock.advance(3_600_000);
    expect(await renew(agent)).toBe("device.posture_stale");
    // The check-in: the same verdict, newer.
    const out = await mdm({ type: "device.compliance_changed", mdmId: "mac-stale", compliant: true });
    expect(out.applied).toBe(true);
    expect(await renew(agent)).toBe("issued");
  });

  it("an assigned-user mismatch is denied (device.not_assigned)", async () => {
    const agent = await ca.seedAgent({ agent: { profile: "managed" } });
    await mdm({
      type: "device.enrolled",
      mdmId: "mac-assigned",
      ekPubHash: await ekHex(agent.deviceId),
      assignedUser: "mallory@example.test",
      compliant: true,
    });
    expect(await renew(agent)).toBe("device.not_assigned");
    // Re-assigned to the owner (by owner id this time): allowed.
    await mdm({
      type: "device.enrolled",
      mdmId: "mac-assigned",
      ekPubHash: await ekHex(agent.deviceId),
      assignedUser: agent.ownerId,
      compliant: true,
    });
    expect(await renew(agent)).toBe("issued");
    // Unassigned: denied again (the seeded administrator assignment no longer speaks: the MDM does).
    await mdm({ type: "device.enrolled", mdmId: "mac-assigned", assignedUser: null, compliant: true });
    expect(await renew(agent)).toBe("device.not_assigned");
  });

  it("unenrolment: the device's agents are suspended and denied, its EK registration removed", async () => {
    const agent = await ca.seedAgent({ agent: { profile: "managed" } });
    const ek = await ekHex(agent.deviceId);
    await mdm({
      type: "device.enrolled",
      mdmId: "mac-gone",
      ekPubHash: ek,
      assignedUser: agent.ownerId,
      compliant: true,
    });
    expect(await renew(agent)).toBe("issued");
    const store = ca.running.store;
    expect(await store.tx((tx) => tx.getEkRegistration(Buffer.from(ek, "hex")))).toMatchObject({
      source: "mdm:testmdm",
    });

    const mark = await auditHead(ca);
    const out = await mdm({ type: "device.unenrolled", mdmId: "mac-gone", reason: "wiped" });
    expect(out.suspendedAgents).toEqual([agent.agentId]);
    expect(await agentOf(agent.agentId)).toMatchObject({
      status: "suspended",
      statusReason: "device.unenrolled",
    });
    expect(await store.tx((tx) => tx.getDevice(agent.deviceId))).toMatchObject({
      status: "unenrolled",
      managed: false,
      compliant: false,
      complianceReason: "wiped",
    });
    expect(await store.tx((tx) => tx.getEkRegistration(Buffer.from(ek, "hex")))).toBeNull();
    const events = await auditSince(ca, mark);
    expect(events.map((e) => e.type)).toEqual([
      "device.ek.unregister",
      "agent.suspend",
      "device.unenrol",
      "mdm.device.unenrolled",
    ]);
    expect(events.every((e) => e.decision === "allow" && e.actor === "mdm:testmdm")).toBe(true);

    const denied = await issueVia(ca, agent);
    expect(denied.res.json).toMatchObject({ code: "agent.inactive" });
    expect((denied.res.json as { detail: string }).detail).toContain("device.unenrolled");
    // Even resumed by an administrator, the device itself stops it until the MDM enrols it again.
    await store.tx((tx) => tx.setAgentStatus(agent.agentId, "active", ca.clock.now(), null));
    expect(await renew(agent)).toBe("device.unenrolled");
    await mdm({
      type: "device.enrolled",
      mdmId: "mac-gone",
      ekPubHash: ek,
      assignedUser: agent.ownerId,
      compliant: true,
    });
    expect(await renew(agent)).toBe("issued");
  });
});
