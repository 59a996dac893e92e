import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/index.js";
import { decideIssuance, type IssuanceFacts } from "../../src/policy/index.js";

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0, 500);
const cfg = validateConfig({});
if (!cfg.ok) throw new Error("defaults invalid");
const profile = cfg.config.profiles.default!;

function facts(over: Partial<IssuanceFacts> = {}): IssuanceFacts {
  return {
    now: NOW,
    maxAffirmationAge: 30 * 86_400_000,
    owner: {
      id: "o",
      issuer: "i",
      subject: "s",
      email: null,
      displayName: null,
      status: "active",
      manager: null,
      department: null,
      createdAt: 0,
      updatedAt: 0,
    },
    agent: {
      id: "a",
      name: "n",
      ownerId: "o",
      deviceId: "d",
      spiffeId: "spiffe://t/agent/a",
      purpose: "p",
      profile: "default",
      status: "active",
      expiresAt: NOW + 86_400_000,
      createdAt: 0,
      updatedAt: 0,
    },
    binding: {
      agentId: "a",
      ownerId: "o",
      tokenIssuer: "i",
      tokenSubject: "s",
      authTime: NOW,
      affirmedAt: NOW - 1000,
      expiresAt: NOW + 86_400_000,
    },
    device: {
      id: "d",
      kind: "tpm",
      status: "active",
      ekPubHash: null,
      ekCertIssuer: null,
      akName: null,
      akPublic: null,
      serial: null,
      mdmId: null,
      managed: false,
      compliant: false,
      assignedOwnerId: null,
      createdAt: 0,
      updatedAt: 0,
    },
    profile,
    evidence: { format: "tpm-certify", keyResidency: "tpm", details: {} },
    requestedLifetime: null,
    issuerNotAfter: NOW + 365 * 86_400_000,
    backdate: 30_000,
    ...over,
  };
}

describe("decideIssuance (pure)", () => {
  it("grants the profile lifetime, backdated, in whole seconds", () => {
    const d = decideIssuance(facts());
    expect(d).toEqual({
      allow: true,
      notBefore: NOW - 500 - 30_000,
      notAfter: NOW - 500 + 300_000,
      renewAfter: NOW + 149_750,
    });
  });

  it("caps a requested lifetime at the profile maximum", () => {
    const d = decideIssuance(facts({ requestedLifetime: 3_600_000 }));
    expect(d.allow && d.notAfter).toBe(NOW - 500 + 900_000);
  });

  it("refuses formats and residencies the profile does not allow", () => {
    const p = { ...profile, formats: ["tpm-certify"], keyResidency: ["tpm" as const] };
    expect(
      decideIssuance(
        facts({ profile: p, evidence: { format: "tpm-quote", keyResidency: "bound", details: {} } }),
      ),
    ).toMatchObject({ allow: false, code: "attestation.format_not_allowed" });
    expect(
      decideIssuance(
        facts({ profile: p, evidence: { format: "tpm-certify", keyResidency: "bound", details: {} } }),
      ),
    ).toMatchObject({ allow: false, code: "attestation.residency_not_allowed" });
  });

  it("the most terminal cause wins", () => {
    const f = facts();
    const d = decideIssuance({
      ...f,
      owner: { ...f.owner!, status: "deprovisioned" },
      device: { ...f.device!, status: "unenrolled" },
    });
    expect(d).toMatchObject({ allow: false, code: "owner.inactive" });
  });

  it("refuses when too little lifetime remains", () => {
    const f = facts();
    expect(decideIssuance({ ...f, agent: { ...f.agent, expiresAt: NOW + 10_000 } })).toMatchObject({
      allow: false,
      code: "policy.lifetime_exhausted",
    });
  });

  it("property: a grant never outlives the binding, the agent, the issuer or the profile maximum", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 31_000, max: 3 * 86_400_000 }),
        fc.integer({ min: 31_000, max: 3 * 86_400_000 }),
        fc.integer({ min: 31_000, max: 3 * 86_400_000 }),
        fc.option(fc.integer({ min: 1, max: 86_400_000 }), { nil: null }),
        (agentLeft, bindingLeft, issuerLeft, requested) => {
          const f = facts({ requestedLifetime: requested, issuerNotAfter: NOW + issuerLeft });
          const d = decideIssuance({
            ...f,
            agent: { ...f.agent, expiresAt: NOW + agentLeft },
            binding: { ...f.binding!, expiresAt: NOW + bindingLeft },
          });
          if (!d.allow) return d.code === "policy.lifetime_exhausted";
          return (
            d.notAfter <= NOW + agentLeft &&
            d.notAfter <= NOW + bindingLeft &&
            d.notAfter <= NOW + issuerLeft &&
            d.notAfter <= NOW + profile.maxLifetime &&
            d.notBefore < NOW &&
            d.renewAfter > NOW &&
            d.renewAfter < d.notAfter &&
            d.notAfter % 1000 === 0
          );
        },
      ),
      { numRuns: 1000 },
    );
  });
});
