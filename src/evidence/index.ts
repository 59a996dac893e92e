export { bindingDigest, matchesBinding } from "./binding.js";
export type { EvidenceContext, EvidenceFacts, EvidenceFormat, KeyResidency } from "./format.js";
export { EvidenceRegistry } from "./registry.js";
