// The agent side of Mayfly (`mayfly/agent`): talks to the CA over HTTPS and to its TPM through
// the TPM client. Never imports the server, the store, the authority or express (DESIGN.md,
// Layers). Time and randomness are injected: pass systemClock and systemRandom (re-exported
// here) from your composition root, or a manual clock in tests.
export { type Clock, type Random, systemClock, systemRandom } from "../runtime/clock.js";
export { TPM_KEY_KINDS, TpmClient, type TpmKeyKind } from "../tpm/client/index.js";
export * from "./ak.js";
export * from "./bundle-trust.js";
export * from "./bundle-verify.js";
export * from "./ca-client.js";
export * from "./ca-session.js";
export * from "./csr.js";
export * from "./denials.js";
export * from "./enrol.js";
export * from "./enrolment.js";
export * from "./errors.js";
export * from "./files.js";
export * from "./hook.js";
export * from "./identity.js";
export * from "./issue.js";
export * from "./issuer.js";
export * from "./key-handles.js";
export * from "./output.js";
export * from "./relying-party.js";
export * from "./renewer.js";
export * from "./sleep.js";
export * from "./state.js";
export * from "./tpm-spec.js";
