import { appendAudit } from "../audit/index.js";
import type { Config } from "../config/schema.js";
import type { Clock } from "../runtime/clock.js";
import type { StoreTx } from "../store/store.js";
import type { Agent, AgentStatus, AgentStatusReason, Owner } from "../store/types.js";

// Joiner/mover/leaver and the kill switch, as steps inside the caller's transaction:
// the owner change and every agent it stops commit (and are audited) together, so the
// next issuance's recording transaction sees all of it or none of it.

const EVENT: Record<AgentStatus, string> = {
  active: "agent.resume",
  suspended: "agent.suspend",
  quarantined: "agent.quarantine",
  dormant: "agent.dormant",
  retired: "agent.retire",
};

/** Moves one agent to `status` for `reason`, audited with `actor`; a no-op if nothing changes. */
export async function setAgentState(
  tx: StoreTx,
  clock: Clock,
  agent: Agent,
  status: AgentStatus,
  reason: AgentStatusReason | null,
  actor: string,
  data: Record<string, unknown> = {},
): Promise<boolean> {
  const from = agent.status;
  const fromReason = agent.statusReason ?? null;
  if (from === status && fromReason === reason) return false;
  await tx.setAgentStatus(agent.id, status, clock.now(), reason);
  await appendAudit(tx, clock, {
    type: EVENT[status],
    decision: "allow",
    code: null,
    actor,
    subject: `agent:${agent.id}`,
    data: { ...data, ownerId: agent.ownerId, from, fromReason, to: status, reason },
  });
  return true;
}

/**
 * Can the owner bring this agent back with a fresh login (re-affirmation)? Not a
 * retired one, and not one an administrator holds; everything the owner's own world
 * did (left and came back, moved, pulled the kill switch, went quiet) yes.
 */
export function ownerCanRevive(agent: Agent): boolean {
  if (agent.status === "retired") return false;
  return !(agent.status === "suspended" && agent.statusReason === "admin");
}

export interface OwnerChange {
  leaver: boolean;
  returned: boolean;
  moved: { attribute: string; from: string | null; to: string | null }[];
  suspended: string[];
  quarantined: string[];
}

/**
 * Writes `after` over `before` and applies the lifecycle it implies:
 * - leaver (active -> suspended or deprovisioned): every agent not yet retired is
 *   suspended (owner.left); issuance already stops at owner.inactive, this makes it
 *   visible per agent and keeps them stopped if the owner returns;
 * - mover (a configured attribute moves away from a value it had): active and dormant
 *   agents are quarantined (owner.moved) until the owner re-affirms or a new owner
 *   accepts a transfer. A first value (null -> x) is provisioning, not a move;
 * - returner (not active -> active): audited; agents stay stopped until re-affirmed.
 */
export async function applyOwnerUpdate(
  tx: StoreTx,
  clock: Clock,
  config: Config,
  before: Owner,
  after: Owner,
  actor: string,
): Promise<OwnerChange> {
  const out: OwnerChange = { leaver: false, returned: false, moved: [], suspended: [], quarantined: [] };
  await tx.updateOwner(after);
  const changed = (["email", "displayName", "status", "manager", "department"] as const).filter(
    (k) => before[k] !== after[k],
  );
  if (changed.length > 0) {
    await appendAudit(tx, clock, {
      type: "owner.update",
      decision: "allow",
      code: null,
      actor,
      subject: `owner:${after.id}`,
      data: Object.fromEntries(changed.map((k) => [k, { from: before[k], to: after[k] }])),
    });
  }
  out.leaver = before.status === "active" && after.status !== "active";
  out.returned = before.status !== "active" && after.status === "active";
  if (!out.leaver && after.status === "active") {
    for (const attribute of config.owners.moverAttributes) {
      const from = before[attribute];
      const to = after[attribute];
      if (from !== null && from !== to) out.moved.push({ attribute, from, to });
    }
  }
  if (out.leaver || out.returned || out.moved.length > 0) {
    await appendAudit(tx, clock, {
      type: out.leaver ? "owner.leave" : out.returned ? "owner.return" : "owner.move",
      decision: "allow",
      code: null,
      actor,
      subject: `owner:${after.id}`,
      data: { status: after.status, moved: out.moved },
    });
  }
  if (out.leaver || out.moved.length > 0) {
    for (const agent of await tx.listAgentsByOwner(after.id)) {
      if (
        out.leaver &&
        agent.status !== "retired" &&
        !(agent.status === "suspended" && agent.statusReason === "admin")
      ) {
        if (await setAgentState(tx, clock, agent, "suspended", "owner.left", actor))
          out.suspended.push(agent.id);
      } else if (!out.leaver && (agent.status === "active" || agent.status === "dormant")) {
        if (
          await setAgentState(tx, clock, agent, "quarantined", "owner.moved", actor, { moved: out.moved })
        ) {
          out.quarantined.push(agent.id);
        }
      }
    }
  }
  return out;
}

/** The owner's kill switch: every agent that is not retired or already held stops at once. */
export async function killSwitch(tx: StoreTx, clock: Clock, owner: Owner, actor: string): Promise<string[]> {
  const stopped: string[] = [];
  for (const agent of await tx.listAgentsByOwner(owner.id)) {
    if (agent.status === "retired" || agent.status === "suspended") continue;
    if (await setAgentState(tx, clock, agent, "suspended", "owner.kill", actor)) stopped.push(agent.id);
  }
  await appendAudit(tx, clock, {
    type: "owner.kill",
    decision: "allow",
    code: null,
    actor,
    subject: `owner:${owner.id}`,
    data: { agents: stopped },
  });
  return stopped;
}
