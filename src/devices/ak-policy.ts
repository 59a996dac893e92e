import { MayflyError } from "../errors/index.js";
import {
  attributeProblem,
  type KeyProblem,
  keyTypeLabel,
  keyValidityProblem,
  signingSchemeProblem,
  strengthProblem,
  TPM_KEY_HASHES,
} from "../evidence/tpm-keys.js";
import {
  hierarchyQualifiedName,
  objectName,
  qualifiedName,
  TPM_ALG,
  TPM_RH,
  type TpmtPublic,
  unmarshalTpm2bPublic,
} from "../tpm/index.js";

// What an AK must be before the CA binds it to a device at activation: a restricted signing
// key that never leaves its TPM (TPM 2.0 Part 1 §24: only a restricted key signs TPM-made
// structures, so its attestations cannot be forged with TPM2_Sign), of sane strength, with
// a scheme the verifiers can check. userWithAuth, noDA, adminWithPolicy are the owner's
// business and allowed either way.

export interface AkFacts {
  /** TPMT_PUBLIC as parsed. */
  readonly public: TpmtPublic;
  /** Name = nameAlg || H(TPMT_PUBLIC), computed here, never taken from the client. */
  readonly name: Buffer;
  readonly nameAlg: "sha256" | "sha384";
  /** "rsa-2048", "ecc-p256", ... */
  readonly keyType: string;
  readonly scheme: "rsassa" | "rsapss" | "ecdsa";
  readonly schemeHash: "sha256" | "sha384";
}

const SCHEMES: Readonly<Record<number, AkFacts["scheme"]>> = {
  [TPM_ALG.RSASSA]: "rsassa",
  [TPM_ALG.RSAPSS]: "rsapss",
  [TPM_ALG.ECDSA]: "ecdsa",
};

function akInvalid(p: KeyProblem): MayflyError {
  return new MayflyError("device.ak_invalid", `akPublic.${p.attribute}: ${p.detail}`, {
    field: `akPublic.${p.attribute}`,
  });
}

/**
 * Checks an AK public area (TPM2B_PUBLIC bytes, or parsed) and returns its facts, or throws
 * device.ak_invalid naming the failing member (e.g. field "akPublic.objectAttributes.decrypt").
 * Malformed bytes fail earlier with tpm.malformed / tpm.unsupported.
 */
export function checkAkPublic(akPublic: Buffer | TpmtPublic): AkFacts {
  const pub = Buffer.isBuffer(akPublic) ? unmarshalTpm2bPublic(akPublic) : akPublic;
  const nameAlg = TPM_KEY_HASHES.get(pub.nameAlg);
  if (!nameAlg) {
    throw akInvalid({
      attribute: "nameAlg",
      detail: `0x${pub.nameAlg.toString(16)} is not SHA-256 or SHA-384`,
    });
  }
  const problem =
    attributeProblem(
      pub,
      ["restricted", "sign", "fixedTPM", "fixedParent", "sensitiveDataOrigin"],
      ["decrypt"],
    ) ??
    strengthProblem(pub) ??
    keyValidityProblem(pub) ??
    signingSchemeProblem(pub, false);
  if (problem) throw akInvalid(problem);
  const scheme = pub.scheme!;
  return {
    public: pub,
    name: objectName(pub),
    nameAlg,
    keyType: keyTypeLabel(pub),
    scheme: SCHEMES[scheme.scheme]!,
    schemeHash: TPM_KEY_HASHES.get(scheme.hashAlg!)!,
  };
}

/**
 * The qualified name an AK made by `tpm2_createak` (a child of the EK primary in the
 * endorsement hierarchy) has, which is what every TPMS_ATTEST it signs carries in
 * qualifiedSigner: QN(AK) = H(QN(EK) || Name(AK)), QN(EK) = H(TPM_RH_ENDORSEMENT || Name(EK)).
 * An AK created under another parent (an SRK in the owner hierarchy) has a different QN; store
 * this value only when the activation protocol knows the AK is the EK's child.
 */
export function akQualifiedNameUnderEk(ek: TpmtPublic, akName: Buffer): Buffer {
  const ekQn = qualifiedName(hierarchyQualifiedName(TPM_RH.ENDORSEMENT), objectName(ek));
  return qualifiedName(ekQn, akName);
}
