// Public surface of the x509 module. Import from here, not from the files.
export { type AgentKey, type AgentKeyType, RSA_MAX_BITS, RSA_MIN_BITS } from "./agent-key.js";
export {
  type BuiltCertificate,
  buildIntermediate,
  buildRoot,
  buildServerCertificate,
  type CaName,
  type IntermediateParams,
  type RootParams,
  type ServerCertificateParams,
} from "./ca-profiles.js";
export { CSR_MAX_OCTETS, type CsrInfo, readCsr } from "./csr.js";
export type { CsrSignatureAlgorithm } from "./csr-signature.js";
export { keyIdentifier } from "./key-identifier.js";
export { checkLeaf, type LeafExpectation } from "./leaf-check.js";
export { checkLeafFast } from "./leaf-check-fast.js";
export { createLeafEncoder, type LeafEncoder, type LeafIssuer } from "./leaf-encoder.js";
export { checkLeafInput, type LeafInput, SPIFFE_ID_MAX_OCTETS } from "./leaf-input.js";
export {
  assuranceOidDer,
  decodeMayflyAssurance,
  encodeMayflyAssurance,
  encodeMayflyExtension,
  findMayflyAssurance,
  type KeyResidency,
  MAYFLY_ASSURANCE_VERSION,
  type MayflyAssurance,
} from "./mayfly-extension.js";
export { ASSURANCE_OID_MAX_LENGTH, assuranceOidProblem, OID_MAYFLY_ASSURANCE } from "./oids.js";
export { isMayflySerial, newSerial, SERIAL_LENGTH } from "./serial.js";
export { type SignerCrypto, signerCrypto } from "./signer-crypto.js";
