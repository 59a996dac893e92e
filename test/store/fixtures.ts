import { createHash } from "node:crypto";
import { expect } from "vitest";
import { isMayflyError } from "../../src/errors/index.js";
import type { StoreTx } from "../../src/store/store.js";
import type {
  Activation,
  Agent,
  AgentTransfer,
  Binding,
  CaCertificate,
  CertificateRecord,
  Device,
  EkRegistration,
  Owner,
  ScimUser,
} from "../../src/store/types.js";

// Record factories for the conformance suite. Every value is derived from a label, so
// records are distinct and tests are deterministic. Times sit around T0.

export const T0 = 1_750_000_000_000;

/** 32 bytes (or n) that depend only on `label`. */
export function bytes(label: string, n = 32): Buffer {
  const out = Buffer.alloc(n);
  let block = createHash("sha256").update(label).digest();
  for (let i = 0; i < n; i += 32) {
    block.copy(out, i);
    block = createHash("sha256").update(block).digest();
  }
  return out;
}

export function owner(id: string, over: Partial<Owner> = {}): Owner {
  return {
    id,
    issuer: "https://idp.example.test",
    subject: `sub-${id}`,
    email: `${id}@example.test`,
    displayName: `Owner ${id} — Ünïcødé ✓`,
    status: "active",
    manager: "mgr-1",
    department: "R&D",
    groups: ["engineering", "Ünïcødé ✓"],
    createdAt: T0,
    updatedAt: T0 + 1,
    ...over,
  };
}

export function device(id: string, over: Partial<Device> = {}): Device {
  return {
    id,
    kind: "tpm",
    status: "active",
    ekPubHash: bytes(`ek-${id}`),
    ekCertIssuer: "CN=Example TPM CA",
    akName: bytes(`ak-name-${id}`, 34),
    akPublic: bytes(`ak-pub-${id}`, 90),
    serial: `SN-${id}`,
    mdmId: `mdm-${id}`,
    managed: true,
    compliant: false,
    assignedOwnerId: null,
    createdAt: T0,
    updatedAt: T0 + 2,
    assignedUser: null,
    platform: null,
    complianceReason: null,
    postureAt: null,
    mdmEventAt: null,
    akQualifiedName: null,
    ...over,
  };
}

export function agent(id: string, ownerId: string, deviceId: string, over: Partial<Agent> = {}): Agent {
  return {
    id,
    name: `agent-${id}`,
    ownerId,
    deviceId,
    spiffeId: `spiffe://example.test/agent/${id}`,
    purpose: "nightly build",
    profile: "default",
    status: "active",
    statusReason: null,
    expiresAt: T0 + 86_400_000,
    lastIssuedAt: null,
    createdAt: T0,
    updatedAt: T0 + 3,
    ...over,
  };
}

export function binding(agentId: string, ownerId: string, over: Partial<Binding> = {}): Binding {
  return {
    agentId,
    ownerId,
    tokenIssuer: "https://idp.example.test",
    tokenSubject: `sub-${ownerId}`,
    authTime: T0 - 5_000,
    affirmedAt: T0,
    expiresAt: T0 + 30 * 86_400_000,
    ...over,
  };
}

export function certificate(
  label: string,
  agentId: string,
  over: Partial<CertificateRecord> = {},
): CertificateRecord {
  const der = bytes(`der-${label}`, 400);
  return {
    issuerKeyId: bytes("issuer-1", 20),
    serial: bytes(`serial-${label}`, 16),
    agentId,
    challengeNonce: bytes(`nonce-${label}`),
    notBefore: T0 - 30_000,
    notAfter: T0 + 300_000,
    der,
    fingerprint: createHash("sha256").update(der).digest(),
    createdAt: T0,
    ...over,
  };
}

export function caCertificate(id: string, over: Partial<CaCertificate> = {}): CaCertificate {
  return {
    id,
    role: "intermediate",
    slot: "current",
    keyLabel: `key-${id}`,
    der: bytes(`ca-der-${id}`, 500),
    notBefore: T0,
    notAfter: T0 + 365 * 86_400_000,
    createdAt: T0,
    ...over,
  };
}

/** A pending activation; the EK is `ek` (a label), so several can share one EK. */
export function activation(id: string, ek = "ek-1", over: Partial<Activation> = {}): Activation {
  return {
    id,
    ekPubHash: bytes(`ek-hash-${ek}`),
    ekPublic: bytes(`ek-public-${ek}`, 314),
    ekCertIssuer: "CN=Example TPM Intermediate CA, O=Ünïcødé ✓",
    trustedVia: "certificate",
    akPublic: bytes(`ak-public-${id}`, 90),
    akName: bytes(`ak-name-${id}`, 34),
    secretHash: bytes(`secret-${id}`),
    state: "pending",
    deviceId: null,
    createdAt: T0,
    expiresAt: T0 + 300_000,
    completedAt: null,
    ...over,
  };
}

export function ekRegistration(ek: string, over: Partial<EkRegistration> = {}): EkRegistration {
  return {
    ekPubHash: bytes(`ek-hash-${ek}`),
    source: "cli",
    note: `asset tag ${ek}`,
    createdAt: T0,
    ...over,
  };
}

export function scimUser(id: string, ownerId: string, over: Partial<ScimUser> = {}): ScimUser {
  return {
    id,
    ownerId,
    userName: `User.${id}@Example.test`,
    externalId: `ext-${id}`,
    active: true,
    resource: {
      userName: `User.${id}@Example.test`,
      name: { givenName: "Zoë", familyName: "Ünïcødé" },
      emails: [{ value: `${id}@example.test`, primary: true, type: "work" }],
      "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { department: "R&D" },
    },
    version: 1,
    createdAt: T0,
    updatedAt: T0,
    ...over,
  };
}

export function transfer(
  id: string,
  agentId: string,
  from: string,
  to: string,
  over: Partial<AgentTransfer> = {},
) {
  const t: AgentTransfer = {
    id,
    agentId,
    fromOwnerId: from,
    toOwnerId: to,
    offeredBy: `owner:${from}`,
    state: "pending",
    createdAt: T0,
    expiresAt: T0 + 60_000,
    completedAt: null,
    ...over,
  };
  return t;
}

/** An owner, a device and an agent, ready for challenges and certificates. */
export async function seedAgent(tx: StoreTx, id = "a1"): Promise<Agent> {
  await tx.insertOwner(owner(`o-${id}`));
  await tx.insertDevice(device(`d-${id}`));
  const a = agent(id, `o-${id}`, `d-${id}`);
  await tx.insertAgent(a);
  return a;
}

/** Asserts that `p` rejects with a MayflyError carrying `code`. */
export async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const e = await p.then(
    () => {
      throw new Error(`expected rejection with ${code}, but it resolved`);
    },
    (err: unknown) => err,
  );
  if (!isMayflyError(e)) throw e;
  expect(e.code).toBe(code);
}
