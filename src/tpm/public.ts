import { TpmReader } from "./buffer-reader.js";
import { TpmWriter } from "./buffer-writer.js";
import { ECC_CURVE_BYTES, MAX_DIGEST_BYTES, TPM_ALG, TPMA_OBJECT_RESERVED } from "./constants.js";
import { malformed, unsupported } from "./errors.js";
import { hashAlgInfo } from "./hash-algs.js";
import {
  type AsymScheme,
  ECC_SCHEMES,
  type KdfScheme,
  RSA_SCHEMES,
  readAsymScheme,
  readKdfScheme,
  readSymDefObject,
  type SymDefObject,
  writeAsymScheme,
  writeKdfScheme,
  writeSymDefObject,
} from "./public-params.js";

// TPMT_PUBLIC / TPM2B_PUBLIC (Part 2 §12.2) for RSA and ECC keys. Parsing is structural and
// strict; whether a key is fit for a purpose (an AK, an EK) is decided by the callers.

interface PublicBase {
  readonly nameAlg: number;
  readonly objectAttributes: number;
  readonly authPolicy: Buffer;
  readonly symmetric: SymDefObject | null;
  readonly scheme: AsymScheme | null;
}

export interface RsaPublic extends PublicBase {
  readonly type: typeof TPM_ALG.RSA;
  readonly keyBits: number;
  /** As on the wire: 0 means the default 65537 (see rsaExponent). Kept raw to round-trip. */
  readonly exponent: number;
  /** The modulus, big-endian. */
  readonly unique: Buffer;
}

export interface EccPoint {
  readonly x: Buffer;
  readonly y: Buffer;
}

export interface EccPublic extends PublicBase {
  readonly type: typeof TPM_ALG.ECC;
  readonly curveId: number;
  readonly kdf: KdfScheme | null;
  readonly unique: EccPoint;
}

export type TpmtPublic = RsaPublic | EccPublic;

const RSA_KEY_BITS: readonly number[] = [1024, 2048, 3072, 4096];
const F = "TPMT_PUBLIC";
const RSA_P = `${F}.parameters.rsaDetail`;
const ECC_P = `${F}.parameters.eccDetail`;
/** TPM2B_PUBLIC.size bound: larger than any RSA-4096 or ECC public area. */
const MAX_PUBLIC_BYTES = 1024;

export function rsaExponent(pub: RsaPublic): number {
  return pub.exponent === 0 ? 65537 : pub.exponent;
}

export function readTpmtPublic(r: TpmReader): TpmtPublic {
  const type = r.u16(`${F}.type`);
  if (type !== TPM_ALG.RSA && type !== TPM_ALG.ECC) throw unsupported(`${F}.type`, type);
  const nameAlg = r.u16(`${F}.nameAlg`);
  const digestSize = hashAlgInfo(nameAlg, `${F}.nameAlg`).size;
  const objectAttributes = r.u32(`${F}.objectAttributes`);
  if ((objectAttributes & TPMA_OBJECT_RESERVED) >>> 0 !== 0) {
    throw malformed(`${F}.objectAttributes`, `reserved bits set in 0x${objectAttributes.toString(16)}`);
  }
  const authPolicy = r.tpm2b(`${F}.authPolicy`, MAX_DIGEST_BYTES);
  // The TPM itself refuses a policy that is neither empty nor a nameAlg digest.
  if (authPolicy.length !== 0 && authPolicy.length !== digestSize) {
    throw malformed(
      `${F}.authPolicy.size`,
      `${authPolicy.length} is neither 0 nor the nameAlg size ${digestSize}`,
    );
  }
  const base = { nameAlg, objectAttributes, authPolicy };
  return type === TPM_ALG.RSA ? readRsaRest(r, base) : readEccRest(r, base);
}

type Base = Pick<PublicBase, "nameAlg" | "objectAttributes" | "authPolicy">;

function readRsaRest(r: TpmReader, base: Base): RsaPublic {
  const symmetric = readSymDefObject(r, `${RSA_P}.symmetric`);
  const scheme = readAsymScheme(r, `${RSA_P}.scheme`, RSA_SCHEMES);
  const keyBits = r.u16(`${RSA_P}.keyBits`);
  if (!RSA_KEY_BITS.includes(keyBits)) throw unsupported(`${RSA_P}.keyBits`, keyBits);
  const exponent = r.u32(`${RSA_P}.exponent`);
  const unique = r.tpm2b(`${F}.unique.rsa`, keyBits / 8);
  return { type: TPM_ALG.RSA, ...base, symmetric, scheme, keyBits, exponent, unique };
}

function readEccRest(r: TpmReader, base: Base): EccPublic {
  const symmetric = readSymDefObject(r, `${ECC_P}.symmetric`);
  const scheme = readAsymScheme(r, `${ECC_P}.scheme`, ECC_SCHEMES);
  const curveId = r.u16(`${ECC_P}.curveID`);
  const coordBytes = ECC_CURVE_BYTES[curveId];
  if (coordBytes === undefined) throw unsupported(`${ECC_P}.curveID`, curveId);
  const kdf = readKdfScheme(r, `${ECC_P}.kdf`);
  const x = r.tpm2b(`${F}.unique.ecc.x`, coordBytes);
  const y = r.tpm2b(`${F}.unique.ecc.y`, coordBytes);
  return { type: TPM_ALG.ECC, ...base, symmetric, scheme, curveId, kdf, unique: { x, y } };
}

export function writeTpmtPublic(w: TpmWriter, p: TpmtPublic): void {
  w.u16(p.type, `${F}.type`).u16(p.nameAlg, `${F}.nameAlg`).u32(p.objectAttributes, `${F}.objectAttributes`);
  w.tpm2b(p.authPolicy, `${F}.authPolicy`, MAX_DIGEST_BYTES);
  if (p.type === TPM_ALG.RSA) {
    writeSymDefObject(w, p.symmetric, `${RSA_P}.symmetric`);
    writeAsymScheme(w, p.scheme, `${RSA_P}.scheme`);
    w.u16(p.keyBits, `${RSA_P}.keyBits`).u32(p.exponent, `${RSA_P}.exponent`);
    w.tpm2b(p.unique, `${F}.unique.rsa`, p.keyBits / 8);
  } else {
    writeSymDefObject(w, p.symmetric, `${ECC_P}.symmetric`);
    writeAsymScheme(w, p.scheme, `${ECC_P}.scheme`);
    w.u16(p.curveId, `${ECC_P}.curveID`);
    writeKdfScheme(w, p.kdf, `${ECC_P}.kdf`);
    const coordBytes = ECC_CURVE_BYTES[p.curveId];
    if (coordBytes === undefined) throw unsupported(`${ECC_P}.curveID`, p.curveId);
    w.tpm2b(p.unique.x, `${F}.unique.ecc.x`, coordBytes).tpm2b(p.unique.y, `${F}.unique.ecc.y`, coordBytes);
  }
}

/** A bare TPMT_PUBLIC (WebAuthn pubArea, `tpm2_readpublic -f tpmt`); every byte must be used. */
export function unmarshalTpmtPublic(bytes: Uint8Array): TpmtPublic {
  const r = new TpmReader(bytes);
  const pub = readTpmtPublic(r);
  r.expectEnd(F);
  return pub;
}

export function marshalTpmtPublic(pub: TpmtPublic): Buffer {
  const w = new TpmWriter();
  writeTpmtPublic(w, pub);
  return w.finish();
}

/** TPM2B_PUBLIC inside a larger structure: the size must cover the public area exactly. */
export function readTpm2bPublic(r: TpmReader, field = "TPM2B_PUBLIC"): TpmtPublic {
  const inner = new TpmReader(r.tpm2b(field, MAX_PUBLIC_BYTES));
  const pub = readTpmtPublic(inner);
  inner.expectEnd(`${field}.publicArea`);
  return pub;
}

/** TPM2B_PUBLIC as `tpm2_createek -f tss` writes it and as the Mayfly protocol carries it. */
export function unmarshalTpm2bPublic(bytes: Uint8Array): TpmtPublic {
  const r = new TpmReader(bytes);
  const pub = readTpm2bPublic(r);
  r.expectEnd("TPM2B_PUBLIC");
  return pub;
}

export function marshalTpm2bPublic(pub: TpmtPublic): Buffer {
  return new TpmWriter().tpm2b(marshalTpmtPublic(pub), "TPM2B_PUBLIC", MAX_PUBLIC_BYTES).finish();
}
