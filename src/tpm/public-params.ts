import type { TpmReader } from "./buffer-reader.js";
import type { TpmWriter } from "./buffer-writer.js";
import { TPM_ALG } from "./constants.js";
import { malformed, unsupported } from "./errors.js";
import { isHashAlg } from "./hash-algs.js";

// The algorithm-parameter pieces of TPMT_PUBLIC (Part 2 §11-12). TPM_ALG_NULL is modelled as
// `null`, so the type system forces callers to handle "no scheme" / "no symmetric".

/** TPMT_SYM_DEF_OBJECT when not TPM_ALG_NULL. */
export interface SymDefObject {
  readonly algorithm: number;
  readonly keyBits: number;
  readonly mode: number;
}

/** TPMT_RSA_SCHEME / TPMT_ECC_SCHEME when not TPM_ALG_NULL. `count` only for ECDAA. */
export interface AsymScheme {
  readonly scheme: number;
  /** Absent only for RSAES, which has no details. */
  readonly hashAlg?: number;
  readonly count?: number;
}

/** TPMT_KDF_SCHEME when not TPM_ALG_NULL. */
export interface KdfScheme {
  readonly scheme: number;
  readonly hashAlg: number;
}

const SYM_KEY_BITS: ReadonlyMap<number, readonly number[]> = new Map([
  [TPM_ALG.AES, [128, 192, 256]],
  [TPM_ALG.SM4, [128]],
  [TPM_ALG.CAMELLIA, [128, 192, 256]],
]);
const SYM_MODES: ReadonlySet<number> = new Set([
  TPM_ALG.CTR,
  TPM_ALG.OFB,
  TPM_ALG.CBC,
  TPM_ALG.CFB,
  TPM_ALG.ECB,
  TPM_ALG.NULL,
]);
export const RSA_SCHEMES: ReadonlySet<number> = new Set([
  TPM_ALG.RSASSA,
  TPM_ALG.RSAPSS,
  TPM_ALG.RSAES,
  TPM_ALG.OAEP,
]);
export const ECC_SCHEMES: ReadonlySet<number> = new Set([
  TPM_ALG.ECDSA,
  TPM_ALG.ECDH,
  TPM_ALG.ECDAA,
  TPM_ALG.SM2,
  TPM_ALG.ECSCHNORR,
  TPM_ALG.ECMQV,
]);
const KDF_SCHEMES: ReadonlySet<number> = new Set([
  TPM_ALG.MGF1,
  TPM_ALG.KDF1_SP800_56A,
  TPM_ALG.KDF2,
  TPM_ALG.KDF1_SP800_108,
]);

/** A TPMI_ALG_HASH that may not be NULL (scheme and KDF details). */
export function readHashAlg(r: TpmReader, field: string): number {
  const alg = r.u16(field);
  if (!isHashAlg(alg)) throw unsupported(field, alg);
  return alg;
}

export function readSymDefObject(r: TpmReader, field: string): SymDefObject | null {
  const algorithm = r.u16(`${field}.algorithm`);
  if (algorithm === TPM_ALG.NULL) return null;
  const allowedBits = SYM_KEY_BITS.get(algorithm);
  if (!allowedBits) throw unsupported(`${field}.algorithm`, algorithm);
  const keyBits = r.u16(`${field}.keyBits`);
  if (!allowedBits.includes(keyBits)) throw unsupported(`${field}.keyBits`, keyBits);
  const mode = r.u16(`${field}.mode`);
  if (!SYM_MODES.has(mode)) throw unsupported(`${field}.mode`, mode);
  return { algorithm, keyBits, mode };
}

export function writeSymDefObject(w: TpmWriter, s: SymDefObject | null, field: string): void {
  if (s === null) {
    w.u16(TPM_ALG.NULL, `${field}.algorithm`);
    return;
  }
  w.u16(s.algorithm, `${field}.algorithm`).u16(s.keyBits, `${field}.keyBits`).u16(s.mode, `${field}.mode`);
}

/** `allowed` is RSA_SCHEMES or ECC_SCHEMES: the union member depends on the key type. */
export function readAsymScheme(r: TpmReader, field: string, allowed: ReadonlySet<number>): AsymScheme | null {
  const scheme = r.u16(`${field}.scheme`);
  if (scheme === TPM_ALG.NULL) return null;
  if (!allowed.has(scheme)) throw unsupported(`${field}.scheme`, scheme);
  if (scheme === TPM_ALG.RSAES) return { scheme };
  const hashAlg = readHashAlg(r, `${field}.details.hashAlg`);
  if (scheme === TPM_ALG.ECDAA) return { scheme, hashAlg, count: r.u16(`${field}.details.count`) };
  return { scheme, hashAlg };
}

export function writeAsymScheme(w: TpmWriter, s: AsymScheme | null, field: string): void {
  if (s === null) {
    w.u16(TPM_ALG.NULL, `${field}.scheme`);
    return;
  }
  w.u16(s.scheme, `${field}.scheme`);
  if (s.scheme === TPM_ALG.RSAES) return;
  if (s.hashAlg === undefined) throw malformed(`${field}.details.hashAlg`, "missing");
  w.u16(s.hashAlg, `${field}.details.hashAlg`);
  if (s.scheme === TPM_ALG.ECDAA) {
    if (s.count === undefined) throw malformed(`${field}.details.count`, "missing");
    w.u16(s.count, `${field}.details.count`);
  }
}

export function readKdfScheme(r: TpmReader, field: string): KdfScheme | null {
  const scheme = r.u16(`${field}.scheme`);
  if (scheme === TPM_ALG.NULL) return null;
  if (!KDF_SCHEMES.has(scheme)) throw unsupported(`${field}.scheme`, scheme);
  return { scheme, hashAlg: readHashAlg(r, `${field}.details.hashAlg`) };
}

export function writeKdfScheme(w: TpmWriter, k: KdfScheme | null, field: string): void {
  if (k === null) {
    w.u16(TPM_ALG.NULL, `${field}.scheme`);
    return;
  }
  w.u16(k.scheme, `${field}.scheme`).u16(k.hashAlg, `${field}.details.hashAlg`);
}
