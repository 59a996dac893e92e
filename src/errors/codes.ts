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
  "key.extractable": { status: 500, title: "A CA key in the token is not protected from export" },
  "key.token_login_failed": { status: 500, title: "The key token refused the login" },
  "key.token_failed": { status: 503, title: "The key token failed an operation" },

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
  "attestation.format_not_allowed": {
    status: 403,
    title: "The profile does not allow this attestation format",
  },
  "attestation.malformed": { status: 400, title: "The attestation is malformed" },
  "attestation.nonce_mismatch": {
    status: 400,
    title: "The attestation is not bound to this challenge and key",
  },
  "attestation.signature_invalid": { status: 400, title: "The attestation signature does not verify" },
  "attestation.key_mismatch": { status: 400, title: "The attested key is not the CSR key" },
  "attestation.residency_not_allowed": {
    status: 403,
    title: "The profile does not allow this key residency",
  },

  // liveness
  "agent.not_found": { status: 404, title: "Unknown agent" },
  "agent.inactive": { status: 403, title: "The agent is not active" },
  "agent.expired": { status: 403, title: "The agent's purpose has ended" },
  "agent.retired": { status: 403, title: "The agent is retired" },
  "owner.not_found": { status: 403, title: "The agent's owner is unknown" },
  "owner.inactive": { status: 403, title: "The agent's owner is not active" },
  "binding.expired": { status: 403, title: "The owner binding has expired" },
  "binding.affirmation_stale": {
    status: 403,
    title: "The owner has not re-affirmed the binding recently enough",
  },
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

  // evidence (TPM formats, EK trust, AK checks)
  "attestation.magic_invalid": { status: 400, title: "The attestation was not generated by a TPM" },
  "attestation.type_invalid": { status: 400, title: "The attestation structure has the wrong type" },
  "attestation.signer_mismatch": { status: 400, title: "The attestation is not signed by the device's AK" },
  "attestation.name_mismatch": { status: 400, title: "The certified Name is not the presented key's Name" },
  "attestation.key_attributes": { status: 400, title: "The attested key's attributes are not allowed" },
  "attestation.key_weak": { status: 400, title: "The attested key is too weak" },
  "attestation.hash_not_allowed": { status: 400, title: "A hash algorithm that is not allowed was used" },
  "attestation.pcr_mismatch": { status: 403, title: "The quoted PCRs do not match the profile's PCR policy" },
  "device.ek_untrusted": { status: 403, title: "The endorsement key is not trusted" },
  "device.ek_mismatch": { status: 400, title: "The EK certificate does not certify the presented EK" },
  "device.ak_invalid": { status: 400, title: "The attestation key does not meet the requirements" },
  "device.not_activated": { status: 403, title: "The device has no activated attestation key" },

  // TPM credential activation
  "activation.not_found": { status: 404, title: "Unknown activation" },
  "activation.expired": { status: 410, title: "The activation has expired" },
  "activation.consumed": { status: 409, title: "The activation was already attempted" },
  "activation.secret_mismatch": { status: 403, title: "The activation secret is wrong" },

  // owners: ID-token login, owner API, SCIM provisioning, lifecycle, transfers, admins
  "token.missing": { status: 401, title: "No bearer token was presented" },
  "token.malformed": { status: 401, title: "The token is not a signed JWT" },
  "token.algorithm_not_allowed": { status: 401, title: "The token's signing algorithm is not allowed" },
  "token.key_unknown": {
    status: 401,
    title: "The token was signed with a key the identity provider does not publish",
  },
  "token.signature_invalid": { status: 401, title: "The token signature does not verify" },
  "token.issuer_mismatch": { status: 401, title: "The token was issued by another identity provider" },
  "token.audience_mismatch": { status: 401, title: "The token was issued to another client" },
  "token.azp_mismatch": { status: 401, title: "The token's authorized party is not an accepted client" },
  "token.expired": { status: 401, title: "The token has expired" },
  "token.not_yet_valid": { status: 401, title: "The token is not yet valid" },
  "token.claims_invalid": { status: 401, title: "The token's claims are missing or malformed" },
  "token.auth_stale": { status: 401, title: "The login is not fresh enough for this act; log in again" },
  "idp.not_configured": { status: 503, title: "Owner login is not configured" },
  "idp.unavailable": { status: 503, title: "The identity provider could not be reached" },
  "owner.not_provisioned": { status: 403, title: "The person is not provisioned as an owner" },
  "owner.mismatch": { status: 403, title: "The agent belongs to another owner" },
  "agent.expiry_invalid": {
    status: 400,
    title: "expiresAt must be in the future and within the profile's agentMaxLifetime",
  },
  "device.not_assigned": { status: 403, title: "The device is not assigned to this owner" },
  "transfer.not_found": { status: 404, title: "Unknown transfer" },
  "transfer.expired": { status: 410, title: "The transfer offer has expired" },
  "transfer.closed": { status: 409, title: "The transfer offer was already accepted or cancelled" },
  "transfer.not_recipient": { status: 403, title: "The transfer is offered to another owner" },
  "transfer.invalid": { status: 400, title: "The agent cannot be transferred to that owner" },
  "admin.required": { status: 403, title: "An administrator is required" },
  "scim.unauthorized": { status: 401, title: "The provisioning client is not authenticated" },
  "scim.not_found": { status: 404, title: "Unknown SCIM resource" },
  "scim.invalid_filter": { status: 400, title: "The SCIM filter is not supported" },
  "scim.invalid_syntax": { status: 400, title: "The SCIM request is malformed" },
  "scim.invalid_value": { status: 400, title: "A SCIM attribute has an invalid value" },
  "scim.invalid_path": { status: 400, title: "The SCIM PATCH path is not supported" },
  "scim.no_target": { status: 400, title: "The SCIM PATCH path matches nothing" },
  "scim.mutability": { status: 400, title: "The SCIM attribute cannot be changed" },
  "scim.uniqueness": { status: 409, title: "A SCIM user with that userName or identity exists" },

  // rotation: root ceremony refusals, intermediate auto-rotation, and the signed trust bundle
  // (bundle.* are raised by agents and relying parties verifying a bundle update; a CA never sends them)
  "rotation.too_early": {
    status: 409,
    title: "The rotation step is not due: its waiting period has not passed",
  },
  "rotation.retire_blocked": {
    status: 409,
    title: "Certificates that chain to the CA being retired have not all expired",
  },
  "rotation.nothing_prepared": { status: 409, title: "No next root is prepared" },
  "rotation.in_progress": { status: 409, title: "A root rotation is already in progress" },
  "rotation.nothing_to_retire": { status: 409, title: "No previous root is waiting to be retired" },
  "rotation.canary_failed": { status: 500, title: "A new CA certificate failed its canary signature" },
  "bundle.malformed": { status: 502, title: "The trust bundle is malformed" },
  "bundle.signer_unknown": { status: 502, title: "The trust bundle is not signed by a trusted root" },
  "bundle.signature_invalid": { status: 502, title: "A trust bundle signature does not verify" },
  "bundle.stale": { status: 502, title: "The trust bundle is older than the one already held" },
  "bundle.root_not_endorsed": {
    status: 502,
    title: "A new root in the trust bundle is not cross-signed by a trusted root",
  },
  "bundle.trust_domain_mismatch": { status: 502, title: "The trust bundle is for another trust domain" },
  "bundle.chain_invalid": {
    status: 502,
    title: "A CA certificate in the trust bundle does not chain to its roots",
  },

  // mdm: the device-management hook (POST /v1/hooks/mdm) and device posture at issuance
  "mdm.not_configured": { status: 503, title: "The device-management hook is not configured" },
  "mdm.unavailable": { status: 503, title: "The device-management system's keys could not be read" },
  "mdm.jws_malformed": { status: 400, title: "The event is not a compact JWS" },
  "mdm.algorithm_not_allowed": { status: 401, title: "The event's signing algorithm is not allowed" },
  "mdm.key_unknown": {
    status: 401,
    title: "The event was signed with a key the device-management system does not publish",
  },
  "mdm.signature_invalid": { status: 401, title: "The event signature does not verify" },
  "mdm.issuer_mismatch": { status: 401, title: "The event was issued by another sender" },
  "mdm.audience_mismatch": { status: 401, title: "The event was issued for another receiver" },
  "mdm.event_invalid": { status: 400, title: "The event's claims are missing or malformed" },
  "mdm.event_stale": { status: 400, title: "The event is too old (iat or exp)" },
  "mdm.event_not_yet_valid": {
    status: 400,
    title: "The event is dated in the future (iat, nbf or occurredAt)",
  },
  "mdm.replayed": { status: 409, title: "The event (jti) was already received" },
  "mdm.out_of_order": {
    status: 409,
    title: "A newer event for the device was already applied; this one would override it",
  },
  "mdm.device_unknown": { status: 404, title: "The device-management system never enrolled this device" },
  "mdm.device_conflict": {
    status: 409,
    title: "The event's EK or MDM id belongs to another device",
  },
  "device.not_managed": { status: 403, title: "The device is not enrolled in device management" },
  "device.non_compliant": { status: 403, title: "The device is not compliant" },
  "device.posture_stale": {
    status: 403,
    title: "The device-management system has not reported on the device recently enough",
  },

  // last resort
  "internal.error": { status: 500, title: "Internal error" },
} as const satisfies Record<string, { status: number; title: string }>;

export type ErrorCode = keyof typeof ERROR_CODES;

export function isErrorCode(code: string): code is ErrorCode {
  return Object.hasOwn(ERROR_CODES, code);
}
