import type { Profile } from "../config/schema.js";
import type { EvidenceFacts } from "../evidence/format.js";
import { checkLiveness, type Denial, type LivenessFacts } from "./liveness.js";

/** Liveness facts plus the request's; the profile's posture rules are the ones checked. */
export interface IssuanceFacts extends Omit<LivenessFacts, "posture"> {
  profile: Profile;
  evidence: EvidenceFacts;
  /** Lifetime the request asked for, if any (ms). */
  requestedLifetime: number | null;
  issuerNotAfter: number;
  backdate: number;
}

export type Grant = { allow: true; notBefore: number; notAfter: number; renewAfter: number };
export type Decision = Grant | Denial;

/** Shortest certificate worth issuing; below it, the agent would renew at once. */
export const MIN_LIFETIME_MS = 30_000;

/**
 * The issuance decision: a pure function of facts. notAfter never passes the
 * binding's end, the agent's purpose end or the issuer's own expiry.
 */
export function decideIssuance(f: IssuanceFacts): Decision {
  // Named, not `{ ...f, posture }`: on Node 20 a spread followed by members costs µs.
  const live = checkLiveness({
    now: f.now,
    owner: f.owner,
    agent: f.agent,
    binding: f.binding,
    device: f.device,
    maxAffirmationAge: f.maxAffirmationAge,
    posture: f.profile,
  });
  if (live) return live;
  const { profile, evidence, now } = f;
  if (!profile.formats.includes(evidence.format)) {
    return deny(
      "attestation.format_not_allowed",
      `profile ${f.agent.profile} does not accept ${evidence.format}`,
    );
  }
  if (!profile.keyResidency.includes(evidence.keyResidency)) {
    return deny(
      "attestation.residency_not_allowed",
      `profile ${f.agent.profile} does not accept ${evidence.keyResidency} keys`,
    );
  }
  const wanted = Math.min(f.requestedLifetime ?? profile.lifetime, profile.maxLifetime);
  const notAfter = Math.min(now + wanted, f.binding!.expiresAt, f.agent.expiresAt, f.issuerNotAfter);
  if (notAfter - now < MIN_LIFETIME_MS) {
    return deny("policy.lifetime_exhausted", `only ${Math.max(0, notAfter - now)} ms of lifetime remain`);
  }
  // Whole seconds: X.509 times have one-second resolution, so the record and the
  // certificate must agree exactly.
  const notBefore = floorSecond(now - f.backdate);
  const notAfterS = floorSecond(notAfter);
  return { allow: true, notBefore, notAfter: notAfterS, renewAfter: now + Math.floor((notAfterS - now) / 2) };
}

function floorSecond(t: number): number {
  return t - (t % 1000);
}

function deny(code: Denial["code"], detail: string): Denial {
  return { allow: false, code, detail };
}
