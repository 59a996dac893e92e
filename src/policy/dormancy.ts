import type { Agent, AgentStatus, AgentStatusReason, Binding } from "../store/types.js";

export interface DormancyRules {
  dormantAfter: number;
  retireAfter: number;
}

/**
 * The last sign of life: creation, the last certificate, the owner's last affirmation.
 * A renewing agent refreshes it every few minutes; a re-affirmed one starts afresh.
 */
export function lastActivity(agent: Agent, binding: Binding | null): number {
  return Math.max(agent.createdAt, agent.lastIssuedAt ?? 0, binding?.affirmedAt ?? 0);
}

/**
 * What the zombie sweep does to one agent at `now`: retire it at its purpose end, or
 * after dormantAfter + retireAfter without a sign of life (whatever stopped it:
 * dormant, suspended or quarantined); make an active one dormant after dormantAfter.
 * null: leave it as it is.
 */
export function sweepDecision(
  agent: Agent,
  binding: Binding | null,
  now: number,
  rules: DormancyRules,
): { status: AgentStatus; reason: AgentStatusReason } | null {
  if (agent.status === "retired") return null;
  if (agent.expiresAt <= now) return { status: "retired", reason: "expired" };
  const idle = now - lastActivity(agent, binding);
  if (idle >= rules.dormantAfter + rules.retireAfter) return { status: "retired", reason: "inactivity" };
  if (agent.status === "active" && idle >= rules.dormantAfter)
    return { status: "dormant", reason: "inactivity" };
  return null;
}
