import { AGENT_CODES, errorCode, errorStatus } from "./errors.js";

// What a failed renewal means for the agent. A terminal denial is the CA saying "no" about
// the agent itself (its owner left, it was retired, its device unenrolled, its purpose or
// binding ended): asking again cannot help, so the agent stops with a distinct exit code.
// A transient failure (no answer, a 5xx, a challenge that expired in flight, a busy TPM)
// is retried with backoff. Any other refusal (evidence or CSR the CA will not accept) is
// terminal too, as "rejected": the same request would be refused the same way.

export type DenialKind =
  /** owner.inactive, owner.not_found: the owner left or was never provisioned. */
  | "owner-inactive"
  /** agent.retired, agent.not_found. */
  | "agent-retired"
  /** device.unenrolled, device.not_found, device.not_activated. */
  | "device-unenrolled"
  /** agent.expired, binding.expired, policy.lifetime_exhausted: purpose or consent has ended. */
  | "agent-expired"
  /** agent.inactive, binding.affirmation_stale: suspended, quarantined or dormant; a person must act. */
  | "agent-held"
  /** Any other refusal: evidence, CSR, profile or request the CA does not accept. */
  | "rejected"
  /** The TPM no longer holds what the enrolment recorded (cleared, replaced), or a handle is taken. */
  | "enrolment-invalid";

const TERMINAL: Readonly<Record<string, DenialKind>> = {
  "owner.inactive": "owner-inactive",
  "owner.not_found": "owner-inactive",
  "agent.retired": "agent-retired",
  "agent.not_found": "agent-retired",
  "device.unenrolled": "device-unenrolled",
  "device.not_found": "device-unenrolled",
  "device.not_activated": "device-unenrolled",
  "agent.expired": "agent-expired",
  "binding.expired": "agent-expired",
  "policy.lifetime_exhausted": "agent-expired",
  "agent.inactive": "agent-held",
  "binding.affirmation_stale": "agent-held",
  [AGENT_CODES.akMismatch]: "enrolment-invalid",
  [AGENT_CODES.handleOccupied]: "enrolment-invalid",
  [AGENT_CODES.stateInvalid]: "enrolment-invalid",
  [AGENT_CODES.notEnrolled]: "enrolment-invalid",
  [AGENT_CODES.enrolledElsewhere]: "enrolment-invalid",
  [AGENT_CODES.akNameMismatch]: "enrolment-invalid",
  [AGENT_CODES.keyUnsupported]: "rejected",
  [AGENT_CODES.usage]: "rejected",
};

/** Worth another try after a pause: the CA, the network or the TPM, not the agent's standing. */
const TRANSIENT = new Set<string>([
  AGENT_CODES.unreachable,
  AGENT_CODES.badResponse,
  "challenge.expired",
  "challenge.consumed",
  "challenge.not_found",
  "request.rate_limited",
  "store.conflict",
  "internal.error",
  "key.token_failed",
  "tpm.transport_failed",
  "tpm.command_failed",
  "idp.unavailable",
]);

export type Failure =
  | { readonly terminal: false; readonly code: string }
  | { readonly terminal: true; readonly code: string; readonly kind: DenialKind };

export function classifyFailure(e: unknown): Failure {
  const code = errorCode(e);
  if (code === null) return { terminal: false, code: "agent.internal" };
  const kind = TERMINAL[code];
  if (kind) return { terminal: true, code, kind };
  const status = errorStatus(e);
  if (TRANSIENT.has(code) || status === null || status >= 500 || status === 429) {
    return { terminal: false, code };
  }
  return { terminal: true, code, kind: "rejected" };
}

/** One sentence for a newcomer reading the log, per kind. */
export const DENIAL_EXPLANATION: Readonly<Record<DenialKind, string>> = {
  "owner-inactive": "the agent's owner is no longer active in the identity provider",
  "agent-retired": "the agent is retired (or unknown to the CA)",
  "device-unenrolled": "this device is unenrolled (or unknown, or its AK is not activated)",
  "agent-expired": "the agent's purpose or its owner's binding has ended",
  "agent-held": "the agent is suspended, quarantined or dormant, or its binding needs re-affirming",
  rejected: "the CA refuses this agent's requests as they are made",
  "enrolment-invalid": "this device's enrolment no longer matches its TPM; enrol it again",
};
