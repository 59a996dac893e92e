import { z } from "zod";
import { MayflyError } from "../errors/index.js";
import { setAgentState } from "../owners/lifecycle.js";
import type { Agent, AgentTransfer } from "../store/types.js";
import { ownerAct } from "./agents.js";
import { type OwnerApiDeps, requireAdmin } from "./owner-auth.js";
import { createTransfer } from "./transfers.js";
import { parseBody } from "./wire.js";
import { listZombies, type Zombie } from "./zombies.js";

// The administrators' API: an OIDC login whose groups claim holds owners.adminGroup.
// (On the CA host, `mayfly agents ...` does the same with access to the data directory.)
// Stopping an agent needs any valid admin login; bringing one back or handing it to
// someone else needs a fresh one, as an owner's own consequential acts do.

export type AdminAction = "suspend" | "resume" | "retire";

export async function adminListAgents(
  deps: OwnerApiDeps,
  authorization: string | undefined,
  opts: { zombies: boolean },
): Promise<{ agents: Agent[] } | { zombies: Zombie[] }> {
  const out = await ownerAct(deps, "admin.agents.list", authorization, false, null, async (tx, l) => {
    requireAdmin(l);
    if (opts.zombies) return null;
    return tx.listAgents({ limit: 10_000 });
  });
  if (out === null) return { zombies: await listZombies(deps) };
  return { agents: out };
}

export async function adminAgentAction(
  deps: OwnerApiDeps,
  authorization: string | undefined,
  agentId: string,
  action: AdminAction,
): Promise<Agent> {
  return ownerAct(
    deps,
    `admin.agent.${action}`,
    authorization,
    action === "resume",
    `agent:${agentId}`,
    async (tx, l) => {
      requireAdmin(l);
      const agent = await tx.getAgent(agentId);
      if (!agent) throw new MayflyError("agent.not_found", `no agent ${agentId}`);
      if (agent.status === "retired") throw new MayflyError("agent.retired", `agent ${agentId} is retired`);
      const actor = `admin:${l.owner.id}`;
      if (action === "suspend") await setAgentState(tx, deps.clock, agent, "suspended", "admin", actor);
      else if (action === "retire") await setAgentState(tx, deps.clock, agent, "retired", "admin", actor);
      else await setAgentState(tx, deps.clock, agent, "active", null, actor);
      return (await tx.getAgent(agentId))!;
    },
  );
}

const transferSchema = z.object({ toOwnerId: z.string().min(1).max(128) }).strict();

export async function adminTransfer(
  deps: OwnerApiDeps,
  authorization: string | undefined,
  agentId: string,
  body: unknown,
): Promise<AgentTransfer> {
  return ownerAct(deps, "admin.transfer.offer", authorization, true, `agent:${agentId}`, async (tx, l) => {
    requireAdmin(l);
    const req = parseBody(transferSchema, body);
    const agent = await tx.getAgent(agentId);
    if (!agent) throw new MayflyError("agent.not_found", `no agent ${agentId}`);
    return createTransfer(tx, deps, agent, req.toOwnerId, `admin:${l.owner.id}`);
  });
}
