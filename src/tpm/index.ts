// TPM 2.0 wire format, names and MakeCredential for the CA. Everything here is pure
// computation over bytes: no I/O, and randomness only through an injected Random.
export * from "./attest.js";
export { TpmReader } from "./buffer-reader.js";
export { TpmWriter, toTpm2b } from "./buffer-writer.js";
export * from "./constants.js";
export * from "./creation-data.js";
export * from "./credential-file.js";
export { type HashAlgInfo, hashAlgInfo, isHashAlg, isHashAlgAllowed } from "./hash-algs.js";
export { createIdentitySeed, type IdentitySeed } from "./identity-seed.js";
export { kdfa, kdfe } from "./kdf.js";
export * from "./make-credential.js";
export * from "./name.js";
export * from "./pcr.js";
export * from "./public.js";
export {
  eccCurveInfo,
  type KeyParams,
  keyParamsFromKeyObject,
  publicKeyObject,
  publicSpkiDer,
} from "./public-key.js";
export type { AsymScheme, KdfScheme, SymDefObject } from "./public-params.js";
export * from "./signature.js";
export { verifyTpmSignature } from "./verify-signature.js";
