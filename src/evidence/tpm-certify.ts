import { KeyObject } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import { isHashAlgAllowed, objectNameOfPublicArea, TPM_ST, type TpmtPublic } from "../tpm/index.js";
import { bindingDigest } from "./binding.js";
import type { EvidenceContext, EvidenceFacts, EvidenceFormat } from "./format.js";
import {
  type AttestationSigner,
  attestDetails,
  b64urlMember,
  checkExtraData,
  checkMembers,
  checkSigner,
  deviceSigner,
  parseAttest,
  parseKeyPublic,
  parseSignature,
  type TpmFormatOptions,
} from "./tpm-common.js";
import {
  attributeProblem,
  holdsSpki,
  keyTypeLabel,
  signingSchemeProblem,
  strengthProblem,
} from "./tpm-keys.js";

// "tpm-certify": the CSR key lives in the device's TPM. The activated AK certified it
// (TPM2_Certify) with qualifyingData = SHA-256(nonce || CSR SPKI), so the evidence is fresh,
// bound to this CSR key, and signed inside the TPM the EK vouched for.
//
//   { format: "tpm-certify", keyPublic: TPM2B_PUBLIC, certifyInfo: TPMS_ATTEST, signature: TPMT_SIGNATURE }

export const TPM_CERTIFY = "tpm-certify";

export interface CertifyEvidence {
  /** TPM2B_PUBLIC of the certified key. */
  keyPublic: Buffer;
  /** The bare signed TPMS_ATTEST. */
  certifyInfo: Buffer;
  /** TPMT_SIGNATURE over certifyInfo. */
  signature: Buffer;
}

export interface CertifyExpectation {
  signer: AttestationSigner;
  /** What extraData must hold: bindingDigest(nonce, CSR SPKI) in the protocol. */
  extraData: Buffer;
  /**
   * The CSR's public key: the certified key must be this key. Either its canonical SPKI DER
   * as readCsr returns it (what the format passes: the same octets extraData binds), or a
   * KeyObject, whose SPKI is exported here.
   */
  csrKey: { spki: Buffer } | KeyObject;
}

const F = {
  keyPublic: "attestation.keyPublic",
  attest: "attestation.certifyInfo",
  signature: "attestation.signature",
} as const;

function keyError(
  code: "attestation.key_attributes" | "attestation.key_weak" | "attestation.hash_not_allowed",
) {
  return (p: { attribute: string; detail: string }) =>
    new MayflyError(code, `${F.keyPublic}.${p.attribute}: ${p.detail}`, {
      field: `${F.keyPublic}.${p.attribute}`,
    });
}

/** The certified key must be a non-exportable, TPM-generated, unrestricted signing key of sane strength. */
function checkCertifiedKey(key: TpmtPublic): void {
  const attrs = attributeProblem(
    key,
    ["fixedTPM", "fixedParent", "sensitiveDataOrigin", "sign"],
    ["restricted", "decrypt"],
  );
  if (attrs) throw keyError("attestation.key_attributes")(attrs);
  const weak = strengthProblem(key);
  if (weak) throw keyError("attestation.key_weak")(weak);
  const scheme = signingSchemeProblem(key, true);
  if (scheme) {
    const code = scheme.attribute.endsWith("hashAlg")
      ? "attestation.hash_not_allowed"
      : "attestation.key_attributes";
    throw keyError(code)(scheme);
  }
}

/**
 * Verifies tpm-certify evidence against explicit expectations. Check order (each with its code):
 * parse keyPublic, certifyInfo (magic, type, strict), signature -> signature hash, qualifiedSigner,
 * AK signature -> extraData -> key nameAlg, certified Name == Name(keyPublic) -> key attributes,
 * strength, scheme -> certified key == CSR key.
 */
export function verifyTpmCertify(e: CertifyEvidence, x: CertifyExpectation): EvidenceFacts {
  const key = parseKeyPublic(e.keyPublic, F.keyPublic);
  const attest = parseAttest(e.certifyInfo, TPM_ST.ATTEST_CERTIFY, F.attest);
  const sig = parseSignature(e.signature, F.signature);
  checkSigner(attest, e.certifyInfo, sig, x.signer, F);
  checkExtraData(attest, x.extraData, F.attest);
  // A SHA-1 Name would let a second public area stand in for the certified one.
  if (!isHashAlgAllowed(key.nameAlg)) {
    throw keyError("attestation.hash_not_allowed")({
      attribute: "nameAlg",
      detail: `0x${key.nameAlg.toString(16)} is not allowed`,
    });
  }
  // The Name of the public area exactly as sent (it parsed strictly: the TPM2B's two size
  // octets, then the TPMT_PUBLIC to the last byte), which is what the TPM hashed.
  const name = objectNameOfPublicArea(key.nameAlg, e.keyPublic.subarray(2));
  if (!attest.attested.name.equals(name)) {
    throw new MayflyError(
      "attestation.name_mismatch",
      `${F.attest}: the certified Name is not Name(keyPublic)`,
      {
        field: `${F.attest}.attested.certify.name`,
      },
    );
  }
  checkCertifiedKey(key);
  const csrSpki =
    x.csrKey instanceof KeyObject ? x.csrKey.export({ type: "spki", format: "der" }) : x.csrKey.spki;
  if (!holdsSpki(key, csrSpki)) {
    throw new MayflyError(
      "attestation.key_mismatch",
      `${F.keyPublic}: the certified key is not the CSR key`,
      {
        field: F.keyPublic,
      },
    );
  }
  return {
    format: TPM_CERTIFY,
    keyResidency: "tpm",
    // Added to attestDetails' fresh object: on Node 20 a spread followed by members costs µs.
    details: Object.assign(attestDetails(attest, sig, x.signer), {
      certifiedName: name.toString("hex"),
      keyType: keyTypeLabel(key),
    }),
  };
}

export function tpmCertifyFormat(opts: TpmFormatOptions = {}): EvidenceFormat {
  return {
    name: TPM_CERTIFY,
    async verify(att: Record<string, unknown>, ctx: EvidenceContext): Promise<EvidenceFacts> {
      checkMembers(att, ["format", "keyPublic", "certifyInfo", "signature"]);
      const evidence = {
        keyPublic: b64urlMember(att, "keyPublic"),
        certifyInfo: b64urlMember(att, "certifyInfo"),
        signature: b64urlMember(att, "signature"),
      };
      const signer = deviceSigner(ctx.device, opts.qualifiedSigner?.(ctx.device) ?? null);
      return verifyTpmCertify(evidence, {
        signer,
        extraData: bindingDigest(ctx.nonce, ctx.csrKey.spki),
        csrKey: { spki: ctx.csrKey.spki },
      });
    },
  };
}
