import { isErrorCode, isMayflyError, MayflyError } from "../errors/index.js";

/**
 * A failure on the agent side that the CA's error registry does not name: the CA could not
 * be reached or answered something unreadable, the TPM and the CA disagree, or the CA sent
 * a problem code this agent does not know (kept as the string it sent).
 */
export class AgentError extends Error {
  readonly code: string;
  readonly detail: string;
  /** The HTTP status of the CA's answer, when there was one. */
  readonly status: number | null;
  readonly field: string | undefined;

  constructor(
    code: string,
    detail: string,
    opts: { status?: number | null; field?: string; cause?: unknown } = {},
  ) {
    super(`${code}: ${detail}`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = "AgentError";
    this.code = code;
    this.detail = detail;
    this.status = opts.status ?? null;
    this.field = opts.field;
  }
}

/** Agent-side codes (never sent by a CA). */
export const AGENT_CODES = {
  /** No answer: connection refused, TLS failure, timeout. */
  unreachable: "ca.unreachable",
  /** An answer that is not what the protocol promises (not JSON, missing members, not problem+json). */
  badResponse: "ca.bad_response",
  /** The CA computed another AK Name than the TPM reports: enrolment must not continue. */
  akNameMismatch: "agent.ak_name_mismatch",
  /** A key this library cannot put in a CSR. */
  keyUnsupported: "agent.key_unsupported",
  /** TPM2_PCR_Read could not read the whole selection in one call. */
  pcrReadIncomplete: "agent.pcr_read_incomplete",
  /** A command-line value or library option the agent cannot use. */
  usage: "agent.usage_invalid",
  /** No enrolment state in the state directory: run `mayfly agent enrol` first. */
  notEnrolled: "agent.not_enrolled",
  /** The state directory holds something this agent did not write (or a newer version). */
  stateInvalid: "agent.state_invalid",
  /** The state directory is enrolled with another CA. */
  enrolledElsewhere: "agent.enrolled_elsewhere",
  /** The AK in the TPM is not the one the state recorded (TPM cleared or replaced). */
  akMismatch: "agent.ak_mismatch",
  /** A persistent TPM handle the agent was told to use holds a key it did not put there. */
  handleOccupied: "agent.handle_occupied",
  /** A relying party's peer certificate does not chain to the trust bundle. */
  peerUntrusted: "peer.untrusted",
  /** A peer certificate (or one of its issuers) is outside its validity period. */
  peerExpired: "peer.expired",
  /** A peer certificate is not a Mayfly agent certificate: SPIFFE ID, usage or assurance. */
  peerInvalid: "peer.invalid",
} as const;

/**
 * The problem+json `code` of a CA denial, or the agent-side code: what callers branch on,
 * whichever class carries it.
 */
export function errorCode(e: unknown): string | null {
  if (isMayflyError(e) || e instanceof AgentError) return e.code;
  return null;
}

/** The HTTP status a CA answered with, for MayflyError and AgentError alike. */
export function errorStatus(e: unknown): number | null {
  if (e instanceof AgentError) return e.status;
  if (isMayflyError(e)) {
    const s = e.extra?.httpStatus;
    return typeof s === "number" ? s : e.status;
  }
  return null;
}

/**
 * A CA problem document as an error: MayflyError when the code is in the registry (so the
 * agent matches the same codes the CA raises), AgentError with the CA's string otherwise.
 */
export function problemError(
  p: { code: string; detail: string; field?: string; instance?: string; type?: string },
  status: number,
): MayflyError | AgentError {
  if (isErrorCode(p.code)) {
    return new MayflyError(p.code, p.detail, {
      ...(p.field === undefined ? {} : { field: p.field }),
      extra: { httpStatus: status, ...(p.instance === undefined ? {} : { instance: p.instance }) },
    });
  }
  return new AgentError(p.code, p.detail, { status, ...(p.field === undefined ? {} : { field: p.field }) });
}
