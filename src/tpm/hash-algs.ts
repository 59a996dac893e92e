import { TPM_ALG } from "./constants.js";
import { unsupported } from "./errors.js";

export interface HashAlgInfo {
  readonly alg: number;
  /** node:crypto digest name. */
  readonly node: string;
  readonly size: number;
}

const HASHES: readonly HashAlgInfo[] = [
  { alg: TPM_ALG.SHA1, node: "sha1", size: 20 },
  { alg: TPM_ALG.SHA256, node: "sha256", size: 32 },
  { alg: TPM_ALG.SHA384, node: "sha384", size: 48 },
  { alg: TPM_ALG.SHA512, node: "sha512", size: 64 },
  { alg: TPM_ALG.SM3_256, node: "sm3", size: 32 },
  { alg: TPM_ALG.SHA3_256, node: "sha3-256", size: 32 },
  { alg: TPM_ALG.SHA3_384, node: "sha3-384", size: 48 },
  { alg: TPM_ALG.SHA3_512, node: "sha3-512", size: 64 },
];

const BY_ALG = new Map(HASHES.map((h) => [h.alg, h]));

export function isHashAlg(alg: number): boolean {
  return BY_ALG.has(alg);
}

/** The hash's facts, or tpm.unsupported naming `field`. */
export function hashAlgInfo(alg: number, field: string): HashAlgInfo {
  const h = BY_ALG.get(alg);
  if (!h) throw unsupported(field, alg);
  return h;
}

/**
 * Whether a hash is strong enough for signatures and names that Mayfly trusts. The parsers
 * accept SHA-1 (real Windows TPMs still sign with it); policy code asks here and refuses.
 */
export function isHashAlgAllowed(alg: number): boolean {
  return BY_ALG.has(alg) && alg !== TPM_ALG.SHA1;
}
