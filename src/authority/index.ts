export { type Bundle, type BundleEntry, buildBundle, bundlePem } from "./bundle.js";
export { type CaState, fingerprint, type Issuer, loadOrCreateCa, toPem } from "./ca-state.js";
export { type ChallengeAnswer, createChallenge } from "./challenges.js";
export { recordDenial } from "./deny.js";
export { type IssueDeps, type Issued, issueCertificate } from "./issue.js";
export { b64, b64url, issueRequestSchema, parseBody } from "./wire.js";
