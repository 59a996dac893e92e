export { canonicalJson } from "./canonical.js";
export {
  AUDIT_HASH_VERSION,
  appendAudit,
  auditHash,
  auditHashInput,
  GENESIS_HASH,
  sealAuditEvent,
} from "./chain.js";
export {
  type AuditFailureReason,
  type AuditVerifyOptions,
  type AuditVerifyResult,
  assertAuditChain,
  verifyAuditChain,
} from "./verify.js";
