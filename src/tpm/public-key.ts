import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";
import { TPM_ALG, TPM_ECC_CURVE } from "./constants.js";
import { keyInvalid, unsupported } from "./errors.js";
import { type EccPoint, type EccPublic, type RsaPublic, rsaExponent, type TpmtPublic } from "./public.js";

// Bridges between a TPM public area and node:crypto keys. The CA converts TPM keys to
// KeyObjects to verify signatures and compare with certificates / CSRs; the reverse direction
// lets tests build TPM public areas around keys whose private half they hold.

interface CurveInfo {
  readonly curveId: number;
  readonly jwk: string;
  readonly node: string;
  readonly bytes: number;
}

const CURVES: readonly CurveInfo[] = [
  { curveId: TPM_ECC_CURVE.NIST_P256, jwk: "P-256", node: "prime256v1", bytes: 32 },
  { curveId: TPM_ECC_CURVE.NIST_P384, jwk: "P-384", node: "secp384r1", bytes: 48 },
  { curveId: TPM_ECC_CURVE.NIST_P521, jwk: "P-521", node: "secp521r1", bytes: 66 },
];

/** node:crypto facts for the NIST curves Mayfly can convert; tpm.unsupported for any other. */
export function eccCurveInfo(curveId: number, field = "TPMT_PUBLIC.parameters.eccDetail.curveID"): CurveInfo {
  const c = CURVES.find((k) => k.curveId === curveId);
  if (!c) throw unsupported(field, curveId);
  return c;
}

/** Left-pads a big-endian integer to `size` bytes; refuses one that does not fit. */
export function padTo(value: Buffer, size: number, field: string): Buffer {
  let v = value;
  while (v.length > size && v[0] === 0) v = v.subarray(1);
  if (v.length > size) throw keyInvalid(field, `${v.length} bytes do not fit in ${size}`);
  return Buffer.concat([Buffer.alloc(size - v.length), v]);
}

function rsaKey(pub: RsaPublic): KeyObject {
  const field = "TPMT_PUBLIC.unique.rsa";
  if (pub.unique.length !== pub.keyBits / 8 || (pub.unique[0]! & 0x80) === 0) {
    throw keyInvalid(field, `modulus is not ${pub.keyBits} bits`);
  }
  const e = rsaExponent(pub);
  if (e < 3 || e % 2 === 0) throw keyInvalid("TPMT_PUBLIC.parameters.rsaDetail.exponent", `exponent ${e}`);
  const eBytes = Buffer.alloc(4);
  eBytes.writeUInt32BE(e);
  const jwk: JsonWebKey = {
    kty: "RSA",
    n: pub.unique.toString("base64url"),
    e: eBytes.subarray(eBytes.findIndex((b) => b !== 0)).toString("base64url"),
  };
  return importJwk(jwk, field);
}

function eccKey(pub: EccPublic): KeyObject {
  const c = eccCurveInfo(pub.curveId);
  const { x, y } = pub.unique;
  if (x.length === 0 || y.length === 0) throw keyInvalid("TPMT_PUBLIC.unique.ecc", "empty point");
  const jwk: JsonWebKey = {
    kty: "EC",
    crv: c.jwk,
    x: padTo(x, c.bytes, "TPMT_PUBLIC.unique.ecc.x").toString("base64url"),
    y: padTo(y, c.bytes, "TPMT_PUBLIC.unique.ecc.y").toString("base64url"),
  };
  return importJwk(jwk, "TPMT_PUBLIC.unique.ecc");
}

function importJwk(jwk: JsonWebKey, field: string): KeyObject {
  try {
    return createPublicKey({ key: jwk, format: "jwk" });
  } catch (cause) {
    // OpenSSL rejects points off the curve here, which is the check TPM_RC_KEY makes.
    throw keyInvalid(field, "not a valid public key", cause);
  }
}

/** The public key of a TPM object; tpm.key_invalid when unique does not hold a usable key. */
export function publicKeyObject(pub: TpmtPublic): KeyObject {
  return pub.type === TPM_ALG.RSA ? rsaKey(pub) : eccKey(pub);
}

/** SubjectPublicKeyInfo DER, the form EK certificates and CSRs carry. */
export function publicSpkiDer(pub: TpmtPublic): Buffer {
  return publicKeyObject(pub).export({ type: "spki", format: "der" });
}

export type KeyParams =
  | {
      readonly type: typeof TPM_ALG.RSA;
      readonly keyBits: number;
      readonly exponent: number;
      readonly unique: Buffer;
    }
  | { readonly type: typeof TPM_ALG.ECC; readonly curveId: number; readonly unique: EccPoint };

/**
 * The type-specific half of a TPMT_PUBLIC for a node:crypto public key. The exponent is
 * written as 0 for 65537, as TPMs report it. Merge with a template to get a whole public area.
 */
export function keyParamsFromKeyObject(key: KeyObject): KeyParams {
  const jwk = key.export({ format: "jwk" });
  if (jwk.kty === "RSA" && jwk.n && jwk.e) {
    const keyBits = key.asymmetricKeyDetails?.modulusLength ?? 0;
    const eBytes = Buffer.from(jwk.e, "base64url");
    if (eBytes.length > 4) throw keyInvalid("key.e", "exponent does not fit a u32");
    const e = eBytes.readUIntBE(0, eBytes.length);
    const unique = padTo(Buffer.from(jwk.n, "base64url"), keyBits / 8, "key.n");
    return { type: TPM_ALG.RSA, keyBits, exponent: e === 65537 ? 0 : e, unique };
  }
  if (jwk.kty === "EC" && jwk.x && jwk.y) {
    const c = CURVES.find((k) => k.jwk === jwk.crv);
    if (!c) throw keyInvalid("key.crv", `curve ${jwk.crv} is not supported`);
    return {
      type: TPM_ALG.ECC,
      curveId: c.curveId,
      unique: { x: Buffer.from(jwk.x, "base64url"), y: Buffer.from(jwk.y, "base64url") },
    };
  }
  throw keyInvalid("key", `key type ${key.asymmetricKeyType} is not supported`);
}
