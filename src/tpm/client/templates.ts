import { TPM_ALG, TPM_ECC_CURVE, TPMA_OBJECT } from "../constants.js";
import type { TpmtPublic } from "../public.js";
import type { AsymScheme } from "../public-params.js";
import type { TpmKeyKind } from "./constants.js";

// Public-area templates for the keys an agent makes. A primary key is derived from the
// hierarchy seed and its template, so the EK templates must be byte-exact copies of the TCG
// EK Credential Profile (2.5, Annex B) for CreatePrimary to give back the certified EK.

const A = TPMA_OBJECT;

/** PolicySecret(TPM_RH_ENDORSEMENT) under SHA-256: "policy A" of the L-1/L-2 templates. */
export const EK_POLICY_A_SHA256 = Buffer.from(
  "837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa",
  "hex",
);
/** "Policy B" under SHA-384 (PolicyOR of PolicySecret(endorsement) and a PolicyNV branch): H-3. */
export const EK_POLICY_B_SHA384 = Buffer.from(
  "b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12",
  "hex",
);

/** Low-range EKs: no userWithAuth, so using the EK takes the endorsement PolicySecret. */
const EK_ATTRS_L =
  A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.adminWithPolicy | A.restricted | A.decrypt;
/** High-range EKs add userWithAuth: the (empty) EK password authorizes use. */
const EK_ATTRS_H = EK_ATTRS_L | A.userWithAuth;

const AES_128_CFB = { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB };
const AES_256_CFB = { algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB };
const EMPTY = Buffer.alloc(0);

/**
 * TCG EK templates: L-1 (RSA-2048), L-2 (P-256), H-3 (P-384). The low-range ones carry a
 * zero-filled unique of the key size (a historical padding rule); the high-range ones an
 * empty unique.
 */
export function ekTemplate(kind: TpmKeyKind): TpmtPublic {
  switch (kind) {
    case "rsa2048":
      return {
        type: TPM_ALG.RSA,
        nameAlg: TPM_ALG.SHA256,
        objectAttributes: EK_ATTRS_L,
        authPolicy: EK_POLICY_A_SHA256,
        symmetric: AES_128_CFB,
        scheme: null,
        keyBits: 2048,
        exponent: 0,
        unique: Buffer.alloc(256),
      };
    case "ecc256":
      return {
        type: TPM_ALG.ECC,
        nameAlg: TPM_ALG.SHA256,
        objectAttributes: EK_ATTRS_L,
        authPolicy: EK_POLICY_A_SHA256,
        symmetric: AES_128_CFB,
        scheme: null,
        curveId: TPM_ECC_CURVE.NIST_P256,
        kdf: null,
        unique: { x: Buffer.alloc(32), y: Buffer.alloc(32) },
      };
    case "ecc384":
      return {
        type: TPM_ALG.ECC,
        nameAlg: TPM_ALG.SHA384,
        objectAttributes: EK_ATTRS_H,
        authPolicy: EK_POLICY_B_SHA384,
        symmetric: AES_256_CFB,
        scheme: null,
        curveId: TPM_ECC_CURVE.NIST_P384,
        kdf: null,
        unique: { x: EMPTY, y: EMPTY },
      };
  }
}

/**
 * A storage root key in the owner hierarchy, as `tpm2_createprimary -C o -G ecc256:aes128cfb`
 * (or rsa2048) makes it with the attributes of the TCG provisioning guidance. noDA: a parent
 * key should not lock anyone out.
 */
export function srkTemplate(kind: "rsa2048" | "ecc256" = "ecc256"): TpmtPublic {
  const base = {
    nameAlg: TPM_ALG.SHA256,
    objectAttributes:
      A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.noDA | A.restricted | A.decrypt,
    authPolicy: EMPTY,
    symmetric: AES_128_CFB,
    scheme: null,
  };
  if (kind === "rsa2048") return { ...base, type: TPM_ALG.RSA, keyBits: 2048, exponent: 0, unique: EMPTY };
  return {
    ...base,
    type: TPM_ALG.ECC,
    curveId: TPM_ECC_CURVE.NIST_P256,
    kdf: null,
    unique: { x: EMPTY, y: EMPTY },
  };
}

/** The signing scheme and the nameAlg that go with each key kind. */
function signingShape(kind: TpmKeyKind): { scheme: AsymScheme; nameAlg: number } {
  switch (kind) {
    case "rsa2048":
      return { scheme: { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 }, nameAlg: TPM_ALG.SHA256 };
    case "ecc256":
      return { scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 }, nameAlg: TPM_ALG.SHA256 };
    case "ecc384":
      return { scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA384 }, nameAlg: TPM_ALG.SHA384 };
  }
}

function signingTemplate(kind: TpmKeyKind, objectAttributes: number): TpmtPublic {
  const { scheme, nameAlg } = signingShape(kind);
  const base = { nameAlg, objectAttributes, authPolicy: EMPTY, symmetric: null, scheme };
  if (kind === "rsa2048") return { ...base, type: TPM_ALG.RSA, keyBits: 2048, exponent: 0, unique: EMPTY };
  const curveId = kind === "ecc256" ? TPM_ECC_CURVE.NIST_P256 : TPM_ECC_CURVE.NIST_P384;
  return { ...base, type: TPM_ALG.ECC, curveId, kdf: null, unique: { x: EMPTY, y: EMPTY } };
}

const NON_EXPORTABLE = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.sign;

/** An attestation key: restricted signing, so it signs only TPM-generated structures. */
export function akTemplate(kind: TpmKeyKind): TpmtPublic {
  return signingTemplate(kind, NON_EXPORTABLE | A.restricted);
}

/** An unrestricted, non-exportable signing key: the CSR key of the tpm-certify format. */
export function signingKeyTemplate(kind: TpmKeyKind): TpmtPublic {
  return signingTemplate(kind, NON_EXPORTABLE);
}
