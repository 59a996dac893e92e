import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { validateConfig } from "../../src/config/index.js";
import {
  checkLiveness,
  checkPosture,
  decideIssuance,
  deviceAssignedTo,
  type PostureRules,
} from "../../src/policy/index.js";
import type { Agent, Binding, Device, Owner } from "../../src/store/types.js";

// Device posture (issue 8) as a pure function of the facts an issuance reads, and where it
// sits among the other liveness rules.

const NOW = Date.UTC(2026, 10, 28, 12, 0, 0);
const HOUR = 3_600_000;
const ALL: PostureRules = {
  requireManaged: true,
  requireCompliant: true,
  requireAssignedOwner: true,
  maxPostureAge: HOUR,
};
const NONE: PostureRules = {
  requireManaged: false,
  requireCompliant: false,
  requireAssignedOwner: false,
  maxPostureAge: null,
};

const owner: Owner = {
  id: "owner-1",
  issuer: "https://idp.test",
  subject: "00u1abc",
  email: "Alice@Example.test",
  displayName: null,
  status: "active",
  manager: null,
  department: null,
  createdAt: 0,
  updatedAt: 0,
};
function device(over: Partial<Device> = {}): Device {
  return {
    id: "d",
    kind: "managed",
    status: "active",
    ekPubHash: null,
    ekCertIssuer: null,
    akName: null,
    akPublic: null,
    serial: "C02",
    mdmId: "m-1",
    managed: true,
    compliant: true,
    assignedOwnerId: null,
    assignedUser: "alice@example.test",
    platform: null,
    complianceReason: null,
    postureAt: NOW - 60_000,
    mdmEventAt: NOW - 60_000,
    createdAt: 0,
    updatedAt: 0,
    ...over,
  };
}
const code = (d: Device, rules = ALL, now = NOW) => checkPosture(rules, d, owner, now)?.code ?? null;

describe("checkPosture", () => {
  it("allows a managed, compliant, assigned device reported on within maxPostureAge", () => {
    expect(code(device())).toBeNull();
  });

  it("names each failed rule, most fundamental first", () => {
    expect(code(device({ managed: false, compliant: false, assignedUser: "x", postureAt: null }))).toBe(
      "device.not_managed",
    );
    expect(code(device({ compliant: false, assignedUser: "x", postureAt: null }))).toBe(
      "device.non_compliant",
    );
    expect(code(device({ assignedUser: "x", postureAt: null }))).toBe("device.not_assigned");
    expect(code(device({ postureAt: null }))).toBe("device.posture_stale");
    expect(code(device({ postureAt: NOW - HOUR }))).toBe("device.posture_stale");
    expect(code(device({ postureAt: NOW - HOUR + 1 }))).toBeNull();
  });

  it("says why a device is non-compliant when the MDM said", () => {
    const d = checkPosture(ALL, device({ compliant: false, complianceReason: "FileVault off" }), owner, NOW);
    expect(d?.detail).toContain("FileVault off");
  });

  it("asks nothing of a profile without rules", () => {
    fc.assert(
      fc.property(
        fc.boolean(),
        fc.boolean(),
        fc.option(fc.string()),
        fc.option(fc.integer()),
        (m, c, u, p) => {
          expect(code(device({ managed: m, compliant: c, assignedUser: u, postureAt: p }), NONE)).toBeNull();
        },
      ),
    );
  });

  it("each rule alone checks only itself", () => {
    const bad = device({ managed: false, compliant: false, assignedUser: "x", postureAt: null });
    expect(code(bad, { ...NONE, requireManaged: true })).toBe("device.not_managed");
    expect(code(bad, { ...NONE, requireCompliant: true })).toBe("device.non_compliant");
    expect(code(bad, { ...NONE, requireAssignedOwner: true })).toBe("device.not_assigned");
    expect(code(bad, { ...NONE, maxPostureAge: HOUR })).toBe("device.posture_stale");
  });
});

describe("deviceAssignedTo", () => {
  it("matches the MDM's user by IdP subject, owner id or email (any case), nothing else", () => {
    for (const u of ["00u1abc", "owner-1", "alice@example.test", "ALICE@EXAMPLE.TEST"]) {
      expect(deviceAssignedTo(device({ assignedUser: u }), owner), u).toBe(true);
    }
    for (const u of ["00U1ABC", "alice", "bob@example.test", "owner-2", ""]) {
      expect(deviceAssignedTo(device({ assignedUser: u }), owner), u).toBe(false);
    }
    expect(deviceAssignedTo(device({ assignedUser: "alice@example.test" }), { ...owner, email: null })).toBe(
      false,
    );
  });

  it("on a managed device the MDM decides (none: nobody); otherwise the administrator's assignment", () => {
    expect(deviceAssignedTo(device({ assignedUser: null, assignedOwnerId: "owner-1" }), owner)).toBe(false);
    const unmanaged = device({ managed: false, assignedUser: null, mdmId: null });
    expect(deviceAssignedTo({ ...unmanaged, assignedOwnerId: "owner-1" }, owner)).toBe(true);
    expect(deviceAssignedTo({ ...unmanaged, assignedOwnerId: "owner-2" }, owner)).toBe(false);
    expect(deviceAssignedTo(unmanaged, owner)).toBe(false);
  });
});

describe("posture among the liveness rules", () => {
  const agent: Agent = {
    id: "a",
    name: "n",
    ownerId: owner.id,
    deviceId: "d",
    spiffeId: "spiffe://t/agent/a",
    purpose: "p",
    profile: "managed",
    status: "active",
    statusReason: null,
    expiresAt: NOW + 86_400_000,
    lastIssuedAt: null,
    createdAt: 0,
    updatedAt: 0,
  };
  const binding: Binding = {
    agentId: "a",
    ownerId: owner.id,
    tokenIssuer: owner.issuer,
    tokenSubject: owner.subject,
    authTime: NOW,
    affirmedAt: NOW,
    expiresAt: NOW + 86_400_000,
  };
  const live = (d: Device, over: Partial<Parameters<typeof checkLiveness>[0]> = {}) =>
    checkLiveness({
      now: NOW,
      owner,
      agent,
      binding,
      device: d,
      maxAffirmationAge: HOUR,
      posture: ALL,
      ...over,
    })?.code ?? null;

  it("after the owner, the agent and the device's enrolment; before the binding", () => {
    const bad = device({ compliant: false });
    expect(live(bad)).toBe("device.non_compliant");
    expect(live(bad, { owner: { ...owner, status: "deprovisioned" } })).toBe("owner.inactive");
    expect(live(bad, { agent: { ...agent, status: "suspended" } })).toBe("agent.inactive");
    expect(live({ ...bad, status: "unenrolled" })).toBe("device.unenrolled");
    expect(live(bad, { binding: { ...binding, expiresAt: NOW - 1 } })).toBe("device.non_compliant");
    expect(live(bad, { posture: null })).toBeNull();
  });

  it("decideIssuance checks the profile's posture rules", () => {
    const cfg = validateConfig({
      profiles: { default: {}, managed: { requireCompliant: true, maxPostureAge: "1h" } },
    });
    if (!cfg.ok) throw new Error("config invalid");
    const profile = cfg.config.profiles.managed!;
    expect(profile).toMatchObject({
      requireManaged: false,
      requireCompliant: true,
      requireAssignedOwner: false,
      maxPostureAge: HOUR,
    });
    const d = decideIssuance({
      now: NOW,
      owner,
      agent,
      binding,
      device: device({ compliant: false }),
      maxAffirmationAge: HOUR,
      profile,
      evidence: { format: "tpm-certify", keyResidency: "tpm", details: {} },
      requestedLifetime: null,
      issuerNotAfter: NOW + 86_400_000,
      backdate: 30_000,
    });
    expect(d).toMatchObject({ allow: false, code: "device.non_compliant" });
  });
});
