// The registry of stable error codes. A code is part of the API: never rename one,
// add a new one instead. `status` is the HTTP status the server answers with;
// `title` is the RFC 9457 problem title (fixed per code, the detail varies).
export const ERROR_CODES = {
  // request shape
  "request.invalid": { status: 400, title: "The request is malformed" },
  "request.too_large": { status: 413, title: "The request body is too large" },
  "request.unsupported_media_type": { status: 415, title: "Unsupported media type" },
  "request.not_found": { status: 404, title: "No such resource" },
  "request.method_not_allowed": { status: 405, title: "Method not allowed" },
  "request.rate_limited": { status: 429, title: "Too many requests" },

  // configuration (CLI and start-up)
  "config.invalid": { status: 500, title: "The configuration is invalid" },
  "config.secret_unavailable": { status: 500, title: "A configured secret could not be read" },

  // keys
  "key.not_found": { status: 500, title: "A CA key is missing" },
  "key.decrypt_failed": { status: 500, title: "A CA key could not be decrypted" },
  "key.unsupported": { status: 500, title: "The key type is not supported" },
  "key.exists": { status: 409, title: "A key already exists in that slot" },
  "key.label_invalid": { status: 400, title: "The key label is not allowed" },
  "key.not_encrypted": { status: 500, title: "A CA key is stored unencrypted" },
  "key.passphrase_weak": { status: 500, title: "The key passphrase is too short" },

  // certificates and CSRs
  "csr.malformed": { status: 400, title: "The CSR is not a valid PKCS#10 request" },
  "csr.signature_invalid": { status: 400, title: "The CSR signature does not verify" },
  "csr.key_unsupported": { status: 400, title: "The CSR key type or strength is not allowed" },
  "certificate.profile_violation": { status: 500, title: "A signed certificate does not match its profile" },
  "certificate.serial_collision": { status: 500, title: "A serial number was already used by this issuer" },

  // issuance
  "challenge.not_found": { status: 400, title: "Unknown challenge" },
  "challenge.expired": { status: 400, title: "The challenge has expired" },
  "challenge.consumed": { status: 400, title: "The challenge was already used" },
  "challenge.agent_mismatch": { status: 400, title: "The challenge belongs to another agent" },
  "attestation.format_unsupported": { status: 400, title: "The attestation format is not supported" },
  "attestation.format_not_allowed": { status: 403, title: "The profile does not allow this attestation format" },
  "attestation.malformed": { status: 400, title: "The attestation is malformed" },
  "attestation.nonce_mismatch": { status: 400, title: "The attestation is not bound to this challenge and key" },
  "attestation.signature_invalid": { status: 400, title: "The attestation signature does not verify" },
  "attestation.key_mismatch": { status: 400, title: "The attested key is not the CSR key" },
  "attestation.residency_not_allowed": { status: 403, title: "The profile does not allow this key residency" },

  // liveness
  "agent.not_found": { status: 404, title: "Unknown agent" },
  "agent.inactive": { status: 403, title: "The agent is not active" },
  "agent.expired": { status: 403, title: "The agent's purpose has ended" },
  "agent.retired": { status: 403, title: "The agent is retired" },
  "owner.not_found": { status: 403, title: "The agent's owner is unknown" },
  "owner.inactive": { status: 403, title: "The agent's owner is not active" },
  "binding.expired": { status: 403, title: "The owner binding has expired" },
  "binding.affirmation_stale": { status: 403, title: "The owner has not re-affirmed the binding recently enough" },
  "device.not_found": { status: 403, title: "The agent's device is unknown" },
  "device.unenrolled": { status: 403, title: "The device is unenrolled" },
  "policy.lifetime_exhausted": { status: 403, title: "No certificate lifetime remains" },
  "profile.unknown": { status: 400, title: "Unknown certificate profile" },

  // audit
  "audit.chain_broken": { status: 500, title: "The audit chain does not verify" },

  // store
  "store.conflict": { status: 409, title: "A concurrent change conflicted" },

  // tpm
  "tpm.malformed": { status: 400, title: "A TPM structure is malformed" },
  "tpm.unsupported": { status: 400, title: "A TPM algorithm or structure type is not supported" },
  "tpm.key_invalid": { status: 400, title: "A TPM key cannot be used for this operation" },

  // tpm client
  "tpm.command_failed": { status: 502, title: "The TPM refused a command" },
  "tpm.transport_failed": { status: 503, title: "The TPM could not be reached" },

  // last resort
  "internal.error": { status: 500, title: "Internal error" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
