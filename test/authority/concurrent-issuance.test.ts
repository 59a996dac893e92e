import { createHash, X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertAuditChain } from "../../src/audit/index.js";
import { attest, issueVia, newAgentKey, startTestCa, type TestCa } from "../helpers/test-ca.js";

// Group commit under concurrent issuance (SqliteStore runs queued transactions in one
// BEGIN ... COMMIT): every certificate returned is the one recorded, each challenge yields
// at most one, serials are unique, the audit chain verifies end to end with one allow per
// certificate and one deny per refusal.

let ca: TestCa;
beforeAll(async () => {
  ca = await startTestCa();
});
afterAll(async () => {
  await ca?.close();
});

const pemDer = (pem: string) =>
  Buffer.from(pem.replace(/-----(BEGIN|END) CERTIFICATE-----|\s/g, ""), "base64");

describe("concurrent issuance with group commit", () => {
  it("records every returned certificate, one per challenge, and keeps the audit chain", async () => {
    const agents = await Promise.all(Array.from({ length: 8 }, () => ca.seedAgent()));
    const keys = await Promise.all(Array.from({ length: 6 }, () => newAgentKey()));
    // 48 issuances at once, six per agent.
    const issued = await Promise.all(
      Array.from({ length: 48 }, (_, i) => issueVia(ca, agents[i % agents.length]!, keys[i % keys.length])),
    );
    // And 12 challenges each redeemed twice at once: exactly one of each pair wins.
    const racing = await Promise.all(
      Array.from({ length: 12 }, async (_, i) => {
        const agent = agents[i % agents.length]!;
        const key = keys[i % keys.length]!;
        const ch = await ca.call(`/v1/agents/${agent.agentId}/challenges`, {});
        const nonce = Buffer.from((ch.json as { nonce: string }).nonce, "base64url");
        const body = {
          csr: key.csrDer.toString("base64url"),
          nonce: nonce.toString("base64url"),
          attestation: attest(agent.deviceKey, nonce, key.spki),
        };
        const path = `/v1/agents/${agent.agentId}/certificates`;
        return Promise.all([ca.call(path, body), ca.call(path, body)]);
      }),
    );
    for (const pair of racing) {
      const outcomes = pair.map((r) => (r.status === 201 ? "issued" : (r.json as { code: string }).code));
      expect(outcomes.sort()).toEqual(["challenge.consumed", "issued"]);
    }

    const returned = [...issued.map((x) => x.res), ...racing.flat().filter((r) => r.status === 201)];
    expect(returned.every((r) => r.status === 201)).toBe(true);
    expect(returned).toHaveLength(60);

    const { stored, events } = await ca.running.store.tx(async (tx) => ({
      stored: await Promise.all(agents.map((a) => tx.listCertificatesByAgent(a.agentId))),
      events: await tx.listAuditEvents(1, 100_000),
    }));
    const bySerial = new Map(stored.flat().map((c) => [c.serial.toString("hex"), c]));
    expect(bySerial.size).toBe(60);
    for (const r of returned) {
      const out = r.json as { certificate: string; serial: string };
      const der = pemDer(out.certificate);
      const rec = bySerial.get(out.serial);
      expect(rec?.der.equals(der)).toBe(true);
      expect(rec?.fingerprint.equals(createHash("sha256").update(der).digest())).toBe(true);
      expect(new X509Certificate(der).serialNumber.toLowerCase()).toBe(out.serial);
    }
    const nonces = stored.flat().map((c) => c.challengeNonce!.toString("hex"));
    expect(new Set(nonces).size).toBe(60);

    const issues = events.filter((e) => e.type === "certificate.issue");
    expect(issues.filter((e) => e.decision === "allow")).toHaveLength(60);
    expect(issues.filter((e) => e.decision === "deny").map((e) => e.code)).toEqual(
      Array.from({ length: 12 }, () => "challenge.consumed"),
    );
    await assertAuditChain(ca.running.store);
  }, 60_000);
});
