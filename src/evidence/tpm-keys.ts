import {
  publicKeyObject,
  rsaExponent,
  TPM_ALG,
  TPM_ECC_CURVE,
  TPMA_OBJECT,
  type TpmtPublic,
} from "../tpm/index.js";
import { bitString, DER_NULL, integerFromUnsigned, oid, sequence } from "../x509/der.js";
import { OID_RSA_ENCRYPTION } from "../x509/oids.js";

// Key rules shared by the AK check at activation and the certified key in tpm-certify.
// They return the first failure as { attribute, detail } so each caller throws its own code.

export interface KeyProblem {
  /** The TPMT_PUBLIC member at fault, in spec spelling (e.g. "objectAttributes.fixedTPM"). */
  readonly attribute: string;
  readonly detail: string;
}

/** nameAlg and scheme hashes Mayfly accepts for TPM keys. */
export const TPM_KEY_HASHES: ReadonlyMap<number, "sha256" | "sha384"> = new Map([
  [TPM_ALG.SHA256, "sha256"],
  [TPM_ALG.SHA384, "sha384"],
]);

const CURVES: ReadonlyMap<number, string> = new Map([
  [TPM_ECC_CURVE.NIST_P256, "p256"],
  [TPM_ECC_CURVE.NIST_P384, "p384"],
]);

/** "rsa-2048", "ecc-p256": for facts and messages. */
export function keyTypeLabel(pub: TpmtPublic): string {
  return pub.type === TPM_ALG.RSA
    ? `rsa-${pub.keyBits}`
    : `ecc-${CURVES.get(pub.curveId) ?? `0x${pub.curveId.toString(16)}`}`;
}

/** Every attribute in `set` must be set and every one in `clear` clear. */
export function attributeProblem(
  pub: TpmtPublic,
  set: readonly (keyof typeof TPMA_OBJECT)[],
  clear: readonly (keyof typeof TPMA_OBJECT)[],
): KeyProblem | null {
  const a = pub.objectAttributes;
  for (const name of set) {
    if ((a & TPMA_OBJECT[name]) === 0)
      return { attribute: `objectAttributes.${name}`, detail: `${name} is clear` };
  }
  for (const name of clear) {
    if ((a & TPMA_OBJECT[name]) !== 0)
      return { attribute: `objectAttributes.${name}`, detail: `${name} is set` };
  }
  return null;
}

/** RSA >= 2048 bits with e = 65537, or ECC P-256 / P-384 (parameters only; see keyValidityProblem). */
export function strengthProblem(pub: TpmtPublic): KeyProblem | null {
  if (pub.type === TPM_ALG.RSA) {
    if (pub.keyBits < 2048) {
      return { attribute: "parameters.rsaDetail.keyBits", detail: `${pub.keyBits} bits is under 2048` };
    }
    if (rsaExponent(pub) !== 65537) {
      return {
        attribute: "parameters.rsaDetail.exponent",
        detail: `exponent ${rsaExponent(pub)} is not 65537`,
      };
    }
  } else if (!CURVES.has(pub.curveId)) {
    return {
      attribute: "parameters.eccDetail.curveID",
      detail: `curve 0x${pub.curveId.toString(16)} is not P-256 or P-384`,
    };
  }
  return null;
}

/** unique must hold a usable key (a full-size modulus, a point on the curve). */
export function keyValidityProblem(pub: TpmtPublic): KeyProblem | null {
  try {
    publicKeyObject(pub);
    return null;
  } catch {
    return { attribute: "unique", detail: "does not hold a valid public key" };
  }
}

function stripZeros(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  return b.subarray(i);
}

// SubjectPublicKeyInfo DER of a named-curve EC key up to the uncompressed point's 04, as
// node:crypto exports it (and as readCsr returns an agent key's SPKI).
const EC_SPKI_PREFIX: ReadonlyMap<number, { prefix: Buffer; bytes: number }> = new Map([
  [
    TPM_ECC_CURVE.NIST_P256,
    { prefix: Buffer.from("3059301306072a8648ce3d020106082a8648ce3d03010703420004", "hex"), bytes: 32 },
  ],
  [
    TPM_ECC_CURVE.NIST_P384,
    { prefix: Buffer.from("3076301006072a8648ce3d020106052b8104002203620004", "hex"), bytes: 48 },
  ],
]);
const RSA_ALGORITHM = sequence(oid(OID_RSA_ENCRYPTION), DER_NULL);

/** `coord` (big-endian, possibly short or zero-padded) equals spki[at, at + size) exactly. */
function coordinateAt(spki: Buffer, at: number, size: number, coord: Buffer): boolean {
  // An empty TPM2B is no coordinate (publicKeyObject refuses it too), not the number 0.
  if (coord.length === 0) return false;
  const v = stripZeros(coord);
  if (v.length > size) return false;
  const pad = size - v.length;
  for (let i = 0; i < pad; i++) if (spki[at + i] !== 0) return false;
  return spki.subarray(at + pad, at + size).equals(v);
}

/**
 * Whether a TPM public area holds exactly the key whose canonical SubjectPublicKeyInfo DER
 * (named curve, uncompressed point; or RSA with NULL parameters, as node:crypto exports it and
 * as readCsr returns it) is `spki`, compared byte for byte: same curve, same x and y at full
 * coordinate width, or same modulus and exponent as minimal DER INTEGERs. Nothing is imported:
 * the CSR key was validated when readCsr imported it, so equality also proves the TPM key
 * valid. A non-canonical `spki` (a compressed point, explicit curve parameters) never matches.
 */
export function holdsSpki(pub: TpmtPublic, spki: Buffer): boolean {
  if (pub.type === TPM_ALG.RSA) {
    if (pub.unique.length === 0) return false;
    const e = Buffer.alloc(4);
    e.writeUInt32BE(rsaExponent(pub));
    const want = sequence(
      RSA_ALGORITHM,
      bitString(sequence(integerFromUnsigned(pub.unique), integerFromUnsigned(e))),
    );
    return spki.equals(want);
  }
  const c = EC_SPKI_PREFIX.get(pub.curveId);
  if (!c) return false;
  const { prefix, bytes } = c;
  return (
    spki.length === prefix.length + 2 * bytes &&
    spki.subarray(0, prefix.length).equals(prefix) &&
    coordinateAt(spki, prefix.length, bytes, pub.unique.x) &&
    coordinateAt(spki, prefix.length + bytes, bytes, pub.unique.y)
  );
}

/** A signing scheme Mayfly verifies (RSASSA, RSAPSS, ECDSA) with SHA-256 or SHA-384. */
export function signingSchemeProblem(pub: TpmtPublic, allowNull: boolean): KeyProblem | null {
  const attribute = `parameters.${pub.type === TPM_ALG.RSA ? "rsaDetail" : "eccDetail"}.scheme`;
  const s = pub.scheme;
  if (s === null) return allowNull ? null : { attribute, detail: "no signing scheme (TPM_ALG_NULL)" };
  const ok =
    pub.type === TPM_ALG.RSA
      ? s.scheme === TPM_ALG.RSASSA || s.scheme === TPM_ALG.RSAPSS
      : s.scheme === TPM_ALG.ECDSA;
  if (!ok) return { attribute, detail: `scheme 0x${s.scheme.toString(16)} is not RSASSA, RSAPSS or ECDSA` };
  if (s.hashAlg === undefined || !TPM_KEY_HASHES.has(s.hashAlg)) {
    return {
      attribute: `${attribute}.details.hashAlg`,
      detail: `hash 0x${(s.hashAlg ?? 0).toString(16)} is not SHA-256 or SHA-384`,
    };
  }
  return null;
}
