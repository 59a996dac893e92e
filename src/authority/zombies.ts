import type { Config } from "../config/schema.js";
import { setAgentState } from "../owners/lifecycle.js";
import { sweepDecision } from "../policy/dormancy.js";
import type { Clock } from "../runtime/clock.js";
import type { Store } from "../store/store.js";
import type { Agent, AgentStatus } from "../store/types.js";

// No zombie agents: the sweep makes idle agents dormant and retires them, and the
// zombie report names every agent that should worry an operator.

const NOT_RETIRED: AgentStatus[] = ["active", "suspended", "quarantined", "dormant"];
const PAGE = 200;

export interface SweepResult {
  at: number;
  dormant: string[];
  retired: { agentId: string; reason: string }[];
}

/**
 * One pass over every agent that is not retired, a page per transaction. The decision
 * is made on the agent and binding read inside that transaction, so an issuance or a
 * re-affirmation committed first is always seen. Each change is an audit event with
 * `actor` ("sweeper" for the server's timer, "cli" for `mayfly agents sweep`).
 */
export async function sweepAgents(
  deps: { store: Store; clock: Clock; config: Config },
  actor = "sweeper",
): Promise<SweepResult> {
  const { store, clock, config } = deps;
  const out: SweepResult = { at: clock.now(), dormant: [], retired: [] };
  let afterId: string | null = null;
  for (;;) {
    const page: Agent[] = await store.tx(async (tx) => {
      const agents = await tx.listAgents({ statuses: NOT_RETIRED, afterId, limit: PAGE });
      const now = clock.now();
      for (const agent of agents) {
        const d = sweepDecision(agent, await tx.getBinding(agent.id), now, config.agents);
        if (!d) continue;
        await setAgentState(tx, clock, agent, d.status, d.reason, actor, {
          lastIssuedAt: agent.lastIssuedAt,
          expiresAt: agent.expiresAt,
        });
        if (d.status === "dormant") out.dormant.push(agent.id);
        else out.retired.push({ agentId: agent.id, reason: d.reason });
      }
      return agents;
    });
    if (page.length < PAGE) break;
    afterId = page[page.length - 1]!.id;
  }
  return out;
}

export type ZombieKind = "owner_gone" | "dormant" | "past_purpose" | "device_unenrolled";
export const ZOMBIE_KINDS: readonly ZombieKind[] = [
  "owner_gone",
  "dormant",
  "past_purpose",
  "device_unenrolled",
];

export interface Zombie {
  agentId: string;
  name: string;
  ownerId: string;
  deviceId: string;
  status: AgentStatus;
  statusReason: string | null;
  expiresAt: number;
  lastIssuedAt: number | null;
  kinds: ZombieKind[];
}

/**
 * Agents (not retired) whose owner is gone (unknown or not active), that are dormant,
 * that are past their purpose, or whose device is unknown or unenrolled.
 */
export async function listZombies(deps: { store: Store; clock: Clock }): Promise<Zombie[]> {
  const { store, clock } = deps;
  const out: Zombie[] = [];
  let afterId: string | null = null;
  for (;;) {
    const page: Agent[] = await store.tx(async (tx) => {
      const agents = await tx.listAgents({ statuses: NOT_RETIRED, afterId, limit: PAGE });
      const now = clock.now();
      for (const a of agents) {
        const [owner, device] = await Promise.all([tx.getOwner(a.ownerId), tx.getDevice(a.deviceId)]);
        const kinds: ZombieKind[] = [];
        if (owner?.status !== "active") kinds.push("owner_gone");
        if (a.status === "dormant") kinds.push("dormant");
        if (a.expiresAt <= now) kinds.push("past_purpose");
        if (device?.status !== "active") kinds.push("device_unenrolled");
        if (kinds.length === 0) continue;
        out.push({
          agentId: a.id,
          name: a.name,
          ownerId: a.ownerId,
          deviceId: a.deviceId,
          status: a.status,
          statusReason: a.statusReason ?? null,
          expiresAt: a.expiresAt,
          lastIssuedAt: a.lastIssuedAt,
          kinds,
        });
      }
      return agents;
    });
    if (page.length < PAGE) break;
    afterId = page[page.length - 1]!.id;
  }
  return out;
}

/** How many zombies of each kind (an agent may count under several). */
export function countZombies(zombies: readonly Zombie[]): Record<ZombieKind, number> {
  const counts = Object.fromEntries(ZOMBIE_KINDS.map((k) => [k, 0])) as Record<ZombieKind, number>;
  for (const z of zombies) for (const k of z.kinds) counts[k]++;
  return counts;
}
