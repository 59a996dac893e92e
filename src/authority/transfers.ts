import { z } from "zod";
import { appendAudit } from "../audit/index.js";
import type { Config } from "../config/schema.js";
import { MayflyError } from "../errors/index.js";
import { ownerCanRevive, setAgentState } from "../owners/lifecycle.js";
import type { Clock, Random } from "../runtime/clock.js";
import type { StoreTx } from "../store/store.js";
import type { Agent, AgentTransfer } from "../store/types.js";
import { bindingFrom, checkDeviceFor, ownedAgent, ownerAct } from "./agents.js";
import type { OwnerApiDeps } from "./owner-auth.js";
import { requireActive } from "./owner-auth.js";
import { parseBody } from "./wire.js";

// Handing an agent to another owner: the current owner (or an administrator) offers,
// the new owner accepts with a fresh login, which becomes the agent's binding. This is
// also how a mover's quarantined agents find their new owner.

const offerSchema = z.object({ toOwnerId: z.string().min(1).max(128) }).strict();

/** Creates the offer inside the caller's transaction (owner API and CLI alike). */
export async function createTransfer(
  tx: StoreTx,
  deps: { clock: Clock; random: Random; config: Config },
  agent: Agent,
  toOwnerId: string,
  offeredBy: string,
): Promise<AgentTransfer> {
  const now = deps.clock.now();
  if (agent.status === "retired") throw new MayflyError("agent.retired", `agent ${agent.id} is retired`);
  if (agent.expiresAt <= now) throw new MayflyError("agent.expired", `agent ${agent.id} has expired`);
  if (toOwnerId === agent.ownerId) {
    throw new MayflyError("transfer.invalid", "the agent already belongs to that owner", {
      field: "toOwnerId",
    });
  }
  const to = await tx.getOwner(toOwnerId);
  if (!to) throw new MayflyError("transfer.invalid", `no owner ${toOwnerId}`, { field: "toOwnerId" });
  if (to.status !== "active") {
    throw new MayflyError("transfer.invalid", `owner ${toOwnerId} is ${to.status}`, { field: "toOwnerId" });
  }
  const t: AgentTransfer = {
    id: deps.random.bytes(16).toString("base64url"),
    agentId: agent.id,
    fromOwnerId: agent.ownerId,
    toOwnerId,
    offeredBy,
    state: "pending",
    createdAt: now,
    expiresAt: now + deps.config.agents.transferTtl,
    completedAt: null,
  };
  await tx.insertTransfer(t);
  await appendAudit(tx, deps.clock, {
    type: "transfer.offer",
    decision: "allow",
    code: null,
    actor: offeredBy,
    subject: `agent:${agent.id}`,
    data: { transferId: t.id, fromOwnerId: t.fromOwnerId, toOwnerId, expiresAt: t.expiresAt },
  });
  return t;
}

/** POST /v1/agents/{id}/transfers: the owner offers the agent to another owner (fresh login). */
export async function offerTransfer(
  deps: OwnerApiDeps,
  authorization: string | undefined,
  agentId: string,
  body: unknown,
): Promise<AgentTransfer> {
  return ownerAct(deps, "transfer.offer", authorization, true, `agent:${agentId}`, async (tx, l) => {
    const req = parseBody(offerSchema, body);
    requireActive(l.owner);
    const agent = await ownedAgent(tx, l.owner, agentId);
    return createTransfer(tx, deps, agent, req.toOwnerId, `owner:${l.owner.id}`);
  });
}

/**
 * POST /v1/transfers/{id}/accept: the named recipient takes the agent with a fresh
 * login. The device rules of registration apply to the new owner; the binding is the
 * recipient's; the agent is active again unless an administrator holds it.
 */
export async function acceptTransfer(
  deps: OwnerApiDeps,
  authorization: string | undefined,
  transferId: string,
): Promise<{ transferId: string; agentId: string; ownerId: string; status: string }> {
  const { clock, config } = deps;
  return ownerAct(deps, "transfer.accept", authorization, true, `transfer:${transferId}`, async (tx, l) => {
    requireActive(l.owner);
    const now = clock.now();
    const t = await tx.getTransfer(transferId);
    if (!t) throw new MayflyError("transfer.not_found", `no transfer ${transferId}`);
    if (t.toOwnerId !== l.owner.id) {
      throw new MayflyError("transfer.not_recipient", `transfer ${transferId} is offered to another owner`);
    }
    if (t.state !== "pending")
      throw new MayflyError("transfer.closed", `transfer ${transferId} is ${t.state}`);
    if (t.expiresAt <= now) throw new MayflyError("transfer.expired", `transfer ${transferId} has expired`);
    const agent = await tx.getAgent(t.agentId);
    if (!agent) throw new MayflyError("agent.not_found", `no agent ${t.agentId}`);
    if (agent.ownerId !== t.fromOwnerId) {
      throw new MayflyError("transfer.closed", "the agent changed owner after the offer was made");
    }
    if (agent.status === "retired") throw new MayflyError("agent.retired", `agent ${agent.id} is retired`);
    if (agent.expiresAt <= now) throw new MayflyError("agent.expired", `agent ${agent.id} has expired`);
    const profile = config.profiles[agent.profile];
    if (!profile)
      throw new MayflyError("profile.unknown", `agent ${agent.id} names unknown profile ${agent.profile}`);
    checkDeviceFor(await tx.getDevice(agent.deviceId), agent.deviceId, l.owner, profile);
    if (!(await tx.closeTransfer(t.id, "accepted", now))) {
      throw new MayflyError("transfer.closed", `transfer ${transferId} was accepted or cancelled meanwhile`);
    }
    const actor = `owner:${l.owner.id}`;
    await tx.setAgentOwner(agent.id, l.owner.id, now);
    await tx.upsertBinding(bindingFrom(agent, l.owner.id, l.token, now));
    await appendAudit(tx, clock, {
      type: "transfer.accept",
      decision: "allow",
      code: null,
      actor,
      subject: `agent:${agent.id}`,
      data: {
        transferId: t.id,
        fromOwnerId: t.fromOwnerId,
        toOwnerId: l.owner.id,
        tokenSubject: l.token.subject,
        authTime: l.token.authTime,
      },
    });
    const moved = { ...agent, ownerId: l.owner.id };
    if (ownerCanRevive(moved)) await setAgentState(tx, clock, moved, "active", null, actor);
    const after = await tx.getAgent(agent.id);
    return { transferId: t.id, agentId: agent.id, ownerId: l.owner.id, status: after?.status ?? "active" };
  });
}

/** Offers made by or to the owner. */
export async function listTransfers(
  deps: OwnerApiDeps,
  authorization: string | undefined,
): Promise<AgentTransfer[]> {
  return ownerAct(deps, "transfer.list", authorization, false, null, (tx, l) =>
    tx.listTransfersByOwner(l.owner.id),
  );
}
