import { z } from "zod";
import { appendAudit } from "../audit/index.js";
import type { Config, Profile } from "../config/schema.js";
import { MayflyError } from "../errors/index.js";
import { killSwitch, ownerCanRevive, setAgentState } from "../owners/lifecycle.js";
import type { VerifiedIdToken } from "../owners/oidc-verifier.js";
import { deviceAssignedTo } from "../policy/posture.js";
import type { StoreTx } from "../store/store.js";
import type { Agent, Binding, Device, Owner } from "../store/types.js";
import { recordDenial } from "./deny.js";
import { type Login, login, type OwnerApiDeps, requireActive, verifyOwnerToken } from "./owner-auth.js";
import { parseBody } from "./wire.js";

// The owner API: registration, listing, re-affirmation and the kill switch. Every
// call is a login (the ID token is verified, the owner upserted from its claims) and
// every decision an audit event naming the owner; a deny writes nothing else, not even
// the login.

const isoTime = z
  .string()
  .regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)$/, "an RFC 3339 date-time")
  .transform((s, ctx) => {
    const t = Date.parse(s);
    if (Number.isNaN(t)) {
      ctx.addIssue({ code: "custom", message: "not a valid date-time" });
      return z.NEVER;
    }
    return t;
  });

export const registerSchema = z
  .object({
    name: z
      .string()
      .min(1)
      .max(64)
      .regex(/^[\p{L}\p{N}][\p{L}\p{N} ._@-]*$/u, "letters, digits, spaces and . _ @ -"),
    deviceId: z.string().min(1).max(128),
    purpose: z.string().trim().min(1).max(512),
    expiresAt: isoTime,
    profile: z
      .string()
      .regex(/^[a-z0-9-]+$/)
      .optional(),
  })
  .strict();

export interface AgentView {
  agent: Agent;
  binding: Binding | null;
}

function profileNamed(config: Config, name: string): Profile {
  const p = config.profiles[name];
  if (!p) throw new MayflyError("profile.unknown", `no profile ${name}`, { field: "profile" });
  return p;
}

/**
 * The device rules shared by registration and transfer: known, enrolled, activated (it
 * has an AK, so its attestations can be checked) and, where the profile asks, assigned
 * to the owner who binds an agent to it (by an administrator, or by the MDM's assigned user).
 */
export function checkDeviceFor(
  device: Device | null,
  deviceId: string,
  owner: Owner,
  profile: Profile,
): Device {
  if (!device) throw new MayflyError("device.not_found", `no device ${deviceId}`, { field: "deviceId" });
  if (device.status !== "active")
    throw new MayflyError("device.unenrolled", `device ${device.id} is unenrolled`);
  if (!device.akPublic) {
    throw new MayflyError("device.not_activated", `device ${device.id} has no activated attestation key`);
  }
  if (profile.requireAssignedDevice && !deviceAssignedTo(device, owner)) {
    throw new MayflyError("device.not_assigned", `device ${device.id} is not assigned to owner ${owner.id}`);
  }
  return device;
}

/** The binding a fresh login creates or renews: the token's issuer, subject and auth_time, affirmed now. */
export function bindingFrom(agent: Agent, ownerId: string, token: VerifiedIdToken, now: number): Binding {
  return {
    agentId: agent.id,
    ownerId,
    tokenIssuer: token.issuer,
    tokenSubject: token.subject,
    authTime: token.authTime ?? now,
    affirmedAt: now,
    expiresAt: agent.expiresAt,
  };
}

/** Runs one owner act: verify, then login + `act` in one transaction; a failure is one deny event. */
export async function ownerAct<T>(
  deps: OwnerApiDeps,
  type: string,
  authorization: string | undefined,
  fresh: boolean,
  subject: string | null,
  act: (tx: StoreTx, l: Login) => Promise<T>,
): Promise<T> {
  let actor: string | null = null;
  let data: Record<string, unknown> = {};
  try {
    const token = await verifyOwnerToken(deps, authorization, fresh);
    actor = `idp:${token.subject}`;
    data = { tokenIssuer: token.issuer, tokenSubject: token.subject };
    return await deps.store.tx(async (tx) => {
      const l = await login(tx, deps, token);
      // The owner may have been created by this very login and rolled back with the deny;
      // the token's subject in data still says who it was.
      actor = `owner:${l.owner.id}`;
      return act(tx, l);
    });
  } catch (err) {
    throw await recordDenial(deps.store, deps.clock, err, { type, actor, subject, data });
  }
}

/** POST /v1/agents: an owner registers an agent on a device, with a fresh login. */
export async function registerAgent(
  deps: OwnerApiDeps,
  authorization: string | undefined,
  body: unknown,
): Promise<AgentView> {
  const { config, clock, random } = deps;
  return ownerAct(deps, "agent.register", authorization, true, null, async (tx, l) => {
    const req = parseBody(registerSchema, body);
    requireActive(l.owner);
    const now = clock.now();
    const profileName = req.profile ?? "default";
    const profile = profileNamed(config, profileName);
    if (req.expiresAt <= now || req.expiresAt - now > profile.agentMaxLifetime) {
      throw new MayflyError(
        "agent.expiry_invalid",
        `expiresAt must be after now and at most ${profile.agentMaxLifetime / 86_400_000} days ahead (profile ${profileName})`,
        { field: "expiresAt" },
      );
    }
    checkDeviceFor(await tx.getDevice(req.deviceId), req.deviceId, l.owner, profile);
    const id = random.bytes(16).toString("base64url");
    const agent: Agent = {
      id,
      name: req.name,
      ownerId: l.owner.id,
      deviceId: req.deviceId,
      spiffeId: `spiffe://${config.ca.trustDomain}/agent/${id}`,
      purpose: req.purpose,
      profile: profileName,
      status: "active",
      statusReason: null,
      expiresAt: req.expiresAt,
      lastIssuedAt: null,
      createdAt: now,
      updatedAt: now,
    };
    await tx.insertAgent(agent); // store.conflict: the owner already has an agent of that name
    const binding = bindingFrom(agent, l.owner.id, l.token, now);
    await tx.upsertBinding(binding);
    await appendAudit(tx, clock, {
      type: "agent.register",
      decision: "allow",
      code: null,
      actor: `owner:${l.owner.id}`,
      subject: `agent:${id}`,
      data: {
        name: agent.name,
        deviceId: agent.deviceId,
        purpose: agent.purpose,
        profile: profileName,
        spiffeId: agent.spiffeId,
        expiresAt: agent.expiresAt,
        tokenIssuer: binding.tokenIssuer,
        tokenSubject: binding.tokenSubject,
        authTime: binding.authTime,
      },
    });
    return { agent, binding };
  });
}

/** GET /v1/agents: the owner's agents with their bindings (any valid login, not necessarily fresh). */
export async function listOwnerAgents(
  deps: OwnerApiDeps,
  authorization: string | undefined,
): Promise<{ owner: Owner; agents: AgentView[] }> {
  return ownerAct(deps, "agent.list", authorization, false, null, async (tx, l) => {
    const agents = await tx.listAgentsByOwner(l.owner.id);
    const views = await Promise.all(
      agents.map(async (agent) => ({ agent, binding: await tx.getBinding(agent.id) })),
    );
    return { owner: l.owner, agents: views };
  });
}

/** The agent, if this owner owns it. */
export async function ownedAgent(tx: StoreTx, owner: Owner, agentId: string): Promise<Agent> {
  const agent = await tx.getAgent(agentId);
  if (!agent) throw new MayflyError("agent.not_found", `no agent ${agentId}`);
  if (agent.ownerId !== owner.id) {
    throw new MayflyError("owner.mismatch", `agent ${agentId} belongs to another owner`);
  }
  return agent;
}

/**
 * Re-affirms one agent: a fresh binding (this login's subject and auth_time, affirmed
 * now) and, if it was stopped by anything the owner may undo (their own kill switch, a
 * leaver or mover event, dormancy), active again.
 */
async function affirmOne(
  tx: StoreTx,
  deps: OwnerApiDeps,
  l: Login,
  agent: Agent,
): Promise<{ agentId: string; status: string }> {
  const now = deps.clock.now();
  if (agent.status === "retired") throw new MayflyError("agent.retired", `agent ${agent.id} is retired`);
  if (agent.expiresAt <= now) throw new MayflyError("agent.expired", `agent ${agent.id} has expired`);
  if (!ownerCanRevive(agent)) {
    throw new MayflyError("admin.required", `agent ${agent.id} is held by an administrator`);
  }
  const actor = `owner:${l.owner.id}`;
  const binding = bindingFrom(agent, l.owner.id, l.token, now);
  await tx.upsertBinding(binding);
  await appendAudit(tx, deps.clock, {
    type: "binding.affirm",
    decision: "allow",
    code: null,
    actor,
    subject: `agent:${agent.id}`,
    data: { tokenSubject: binding.tokenSubject, authTime: binding.authTime, expiresAt: binding.expiresAt },
  });
  await setAgentState(tx, deps.clock, agent, "active", null, actor);
  return { agentId: agent.id, status: "active" };
}

/** POST /v1/agents/{id}/affirm: one agent. */
export async function affirmAgent(
  deps: OwnerApiDeps,
  authorization: string | undefined,
  agentId: string,
): Promise<{ agentId: string; status: string }> {
  return ownerAct(deps, "binding.affirm", authorization, true, `agent:${agentId}`, async (tx, l) => {
    requireActive(l.owner);
    return affirmOne(tx, deps, l, await ownedAgent(tx, l.owner, agentId));
  });
}

/**
 * POST /v1/owners/me/affirm: every agent of the owner that can be affirmed; retired,
 * expired and administrator-held ones are reported as skipped, not refused.
 */
export async function affirmAll(
  deps: OwnerApiDeps,
  authorization: string | undefined,
): Promise<{ affirmed: string[]; skipped: { agentId: string; code: string }[] }> {
  return ownerAct(deps, "binding.affirm", authorization, true, null, async (tx, l) => {
    requireActive(l.owner);
    const affirmed: string[] = [];
    const skipped: { agentId: string; code: string }[] = [];
    for (const agent of await tx.listAgentsByOwner(l.owner.id)) {
      try {
        await affirmOne(tx, deps, l, agent);
        affirmed.push(agent.id);
      } catch (e) {
        if (!(e instanceof MayflyError)) throw e;
        skipped.push({ agentId: agent.id, code: e.code });
      }
    }
    return { affirmed, skipped };
  });
}

/**
 * POST /v1/owners/me/kill: the owner's kill switch. Any valid login will do, fresh or
 * not, and an inactive owner may pull it too: stopping agents is never the dangerous
 * direction, and an owner in a hurry should not have to log in again first.
 */
export async function ownerKill(
  deps: OwnerApiDeps,
  authorization: string | undefined,
): Promise<{ ownerId: string; suspended: string[] }> {
  return ownerAct(deps, "owner.kill", authorization, false, null, async (tx, l) => {
    const suspended = await killSwitch(tx, deps.clock, l.owner, `owner:${l.owner.id}`);
    return { ownerId: l.owner.id, suspended };
  });
}
