import type { ErrorCode } from "../errors/index.js";
import type { Binding, Device, IssuanceAgent, Owner } from "../store/types.js";
import { checkPosture, type PostureRules } from "./posture.js";

export type Denial = { allow: false; code: ErrorCode; detail: string };

export interface LivenessFacts {
  now: number;
  owner: Owner | null;
  agent: IssuanceAgent;
  binding: Binding | null;
  device: Device | null;
  maxAffirmationAge: number;
  /** The agent's profile's device posture rules (a Profile is one); null: none. */
  posture: PostureRules | null;
}

/**
 * Is the agent live at `now`? The order matters only for which code a caller sees
 * when several things are wrong: the most terminal cause first (an owner who left
 * outranks a stale affirmation), so the agent knows whether retrying can help.
 */
export function checkLiveness(f: LivenessFacts): Denial | null {
  const { now, owner, agent, binding, device } = f;
  if (!owner) return deny("owner.not_found", `owner ${agent.ownerId} of agent ${agent.id} is unknown`);
  if (owner.status !== "active") return deny("owner.inactive", `owner ${owner.id} is ${owner.status}`);
  if (agent.status === "retired") return deny("agent.retired", `agent ${agent.id} is retired`);
  if (agent.expiresAt <= now)
    return deny("agent.expired", `agent ${agent.id} expired at ${iso(agent.expiresAt)}`);
  if (agent.status !== "active") {
    // Quarantined (a mover), dormant (a zombie) and suspended (leaver, kill switch, admin)
    // agents all stop here; the reason tells the agent's operator who can bring it back.
    const why = agent.statusReason ? ` (${agent.statusReason})` : "";
    return deny("agent.inactive", `agent ${agent.id} is ${agent.status}${why}`);
  }
  if (!device) return deny("device.not_found", `device ${agent.deviceId} of agent ${agent.id} is unknown`);
  if (device.status !== "active") return deny("device.unenrolled", `device ${device.id} is ${device.status}`);
  if (f.posture) {
    const posture = checkPosture(f.posture, device, owner, now);
    if (posture) return posture;
  }
  if (!binding || binding.ownerId !== owner.id) {
    return deny("binding.expired", `agent ${agent.id} has no binding to owner ${owner.id}`);
  }
  if (binding.expiresAt <= now)
    return deny("binding.expired", `the binding expired at ${iso(binding.expiresAt)}`);
  if (binding.affirmedAt + f.maxAffirmationAge <= now) {
    return deny("binding.affirmation_stale", `the owner last affirmed at ${iso(binding.affirmedAt)}`);
  }
  return null;
}

function deny(code: ErrorCode, detail: string): Denial {
  return { allow: false, code, detail };
}

function iso(t: number): string {
  return new Date(t).toISOString();
}
