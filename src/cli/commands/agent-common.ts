import {
  type AgentLog,
  classifyFailure,
  DENIAL_EXPLANATION,
  type DenialKind,
  errorCode,
} from "../../agent/index.js";
import type { Clock } from "../../runtime/clock.js";
import { EXIT } from "../exit-codes.js";

// What `mayfly agent enrol` and `mayfly agent run` share: plain log lines on stderr, and the
// exit code for each way an agent can be stopped.

export const DEFAULT_STATE_DIR = ".mayfly-agent";
export const STATE_HELP = "enrolment state directory, 0700 (default: $MAYFLY_AGENT_STATE or ./.mayfly-agent)";
export const TPM_HELP =
  "the TPM: device:/dev/tpmrm0, swtpm:HOST:PORT or swtpm:unix:PATH (default: the enrolled one, else device:/dev/tpmrm0)";

export function stateDirOf(opt: string | undefined): string {
  return opt ?? process.env.MAYFLY_AGENT_STATE ?? DEFAULT_STATE_DIR;
}

export const DENIAL_EXIT: Readonly<Record<DenialKind, number>> = {
  "owner-inactive": EXIT.ownerInactive,
  "agent-retired": EXIT.agentRetired,
  "device-unenrolled": EXIT.deviceUnenrolled,
  "agent-expired": EXIT.agentExpired,
  "agent-held": EXIT.agentHeld,
  rejected: EXIT.rejected,
  "enrolment-invalid": EXIT.enrolmentInvalid,
};

export function stderrLog(clock: Clock, quiet = false): AgentLog {
  return (level, message) => {
    if (quiet && level === "info") return;
    const tag = level === "info" ? "" : ` ${level.toUpperCase()}`;
    process.stderr.write(`mayfly agent ${new Date(clock.now()).toISOString()}${tag}: ${message}\n`);
  };
}

/**
 * Reports a failure that ended a command and returns its exit code: a terminal denial (or a
 * broken enrolment) gets its own code; usage mistakes 2; anything else (unreachable CA, TPM
 * transport) 3.
 */
export function reportAgentFailure(e: unknown): number {
  const code = errorCode(e);
  const detail =
    e && typeof e === "object" && "detail" in e && typeof e.detail === "string"
      ? e.detail
      : e instanceof Error
        ? e.message
        : String(e);
  process.stderr.write(`mayfly agent: ${code ? `${code}: ` : ""}${detail}\n`);
  if (code === "agent.usage_invalid") return EXIT.usage;
  const f = classifyFailure(e);
  if (f.terminal) {
    process.stderr.write(`mayfly agent: ${DENIAL_EXPLANATION[f.kind]}\n`);
    return DENIAL_EXIT[f.kind];
  }
  return EXIT.error;
}
