import { randomBytes } from "node:crypto";
import type { Agent, Binding, Owner } from "../../src/store/types.js";
import type { TestCa } from "./test-ca.js";

export interface SeededAgent {
  agentId: string;
  ownerId: string;
  deviceId: string;
}

/**
 * An owner, an agent and its binding on a device that already exists (one made by the real
 * activation API), written straight into the store: owner registration through OIDC comes
 * later. Unlike TestCa.seedAgent, no device is inserted.
 */
export async function seedAgentOnDevice(
  ca: TestCa,
  deviceId: string,
  opts: Partial<{ agent: Partial<Agent>; owner: Partial<Owner>; binding: Partial<Binding> }> = {},
): Promise<SeededAgent> {
  const n = randomBytes(6).toString("hex");
  const now = ca.clock.now();
  // Asserted rather than annotated: the records gain fields (owner groups, agent status
  // reasons) as the owner lifecycle lands, and these defaults suit either shape.
  const owner = {
    id: `owner-${n}`,
    issuer: "https://idp.test",
    subject: `sub-${n}`,
    email: `owner-${n}@example.test`,
    displayName: `Owner ${n}`,
    status: "active",
    manager: null,
    department: null,
    groups: [],
    createdAt: now,
    updatedAt: now,
    ...opts.owner,
  } as Owner;
  const agentId = `agent-${n}`;
  const agent = {
    id: agentId,
    name: `agent ${n}`,
    ownerId: owner.id,
    deviceId,
    spiffeId: `spiffe://mayfly.internal/agent/${agentId}`,
    purpose: "tests",
    profile: "default",
    status: "active",
    statusReason: null,
    expiresAt: now + 7 * 86_400_000,
    lastIssuedAt: null,
    createdAt: now,
    updatedAt: now,
    ...opts.agent,
  } as Agent;
  const binding: Binding = {
    agentId,
    ownerId: owner.id,
    tokenIssuer: owner.issuer,
    tokenSubject: owner.subject,
    authTime: now,
    affirmedAt: now,
    expiresAt: now + 7 * 86_400_000,
    ...opts.binding,
  };
  await ca.running.store.tx(async (tx) => {
    if (!(await tx.getDevice(deviceId))) throw new Error(`no device ${deviceId}: activate it first`);
    await tx.insertOwner(owner);
    await tx.insertAgent(agent);
    await tx.upsertBinding(binding);
  });
  return { agentId, ownerId: owner.id, deviceId };
}
