/** Documented in README.md and in `mayfly --help`. */
export const EXIT = {
  ok: 0,
  /** A check ran and found a problem: invalid config, a broken audit chain. */
  checkFailed: 1,
  /** The command line itself was wrong. */
  usage: 2,
  /** The command could not do its work: unreadable files, store or key failures. */
  error: 3,
  // `mayfly agent run` (and enrol) stopped by a terminal denial: one code per reason.
  /** owner.inactive, owner.not_found: the agent's owner left. */
  ownerInactive: 10,
  /** agent.retired, agent.not_found. */
  agentRetired: 11,
  /** device.unenrolled, device.not_found, device.not_activated. */
  deviceUnenrolled: 12,
  /** agent.expired, binding.expired, policy.lifetime_exhausted. */
  agentExpired: 13,
  /** agent.inactive, binding.affirmation_stale: suspended, quarantined, dormant; a person must act. */
  agentHeld: 14,
  /** Any other refusal by the CA (evidence, CSR, profile, EK trust). */
  rejected: 15,
  /** The enrolment state no longer matches the TPM (AK gone or replaced, handle taken): enrol again. */
  enrolmentInvalid: 16,
} as const;

export const EXIT_HELP = `
Exit codes:
  0  success
  1  a check ran and failed (config check found errors, audit verify found tampering)
  2  usage error (unknown command or option, missing argument)
  3  runtime error (unreadable file, store or key failure); the message says which
 10  agent: the owner is no longer active (owner.inactive, owner.not_found)
 11  agent: the agent is retired or unknown (agent.retired, agent.not_found)
 12  agent: the device is unenrolled or unknown (device.unenrolled, device.not_found, device.not_activated)
 13  agent: purpose or binding ended (agent.expired, binding.expired, policy.lifetime_exhausted)
 14  agent: held until a person acts (agent.inactive, binding.affirmation_stale)
 15  agent: the CA refuses the request as made (evidence, CSR, profile, EK trust)
 16  agent: the enrolment no longer matches the TPM (AK gone or replaced, handle taken): enrol again
`;
