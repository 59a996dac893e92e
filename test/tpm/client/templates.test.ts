import { describe, expect, it } from "vitest";
import {
  akTemplate,
  EK_POLICY_A_SHA256,
  EK_POLICY_B_SHA384,
  ekTemplate,
  policySecretDigest,
  signingKeyTemplate,
  TPM_KEY_KINDS,
} from "../../../src/tpm/client/index.js";
import {
  marshalTpmtPublic,
  TPM_ALG,
  TPM_RH,
  TPMA_OBJECT,
  type TpmtPublic,
  unmarshalTpm2bPublic,
  unmarshalTpmtPublic,
} from "../../../src/tpm/index.js";
import { fx } from "../helpers/fixtures.js";

// Templates against the public areas tpm2-tools 5.4 made on the reference run
// (test/fixtures/tpm/swtpm): everything but the key itself must be the same. The live tests
// (ek-certificates, attestation) check the EK and SRK templates against the TPM itself.

const withoutKey = ({ unique: _, ...rest }: TpmtPublic) => rest;

describe("key templates", () => {
  it.each(TPM_KEY_KINDS)("EK %s has the shape of tpm2_createek's", (kind) => {
    const tools = unmarshalTpm2bPublic(fx(`swtpm/ek/${kind}.pub`));
    expect(withoutKey(ekTemplate(kind))).toEqual(withoutKey(tools));
  });

  it.each(["rsa2048", "ecc256"] as const)(
    "AK %s is tpm2_createak's AK (-g sha256, rsassa / ecdsa)",
    (kind) => {
      const tools = unmarshalTpm2bPublic(fx(`swtpm/ak/${kind}.pub`));
      expect(withoutKey(akTemplate(kind))).toEqual(withoutKey(tools));
    },
  );

  it("AK and signing-key attributes are what the CA demands", () => {
    const base = TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent | TPMA_OBJECT.sensitiveDataOrigin;
    for (const kind of TPM_KEY_KINDS) {
      const ak = akTemplate(kind);
      const key = signingKeyTemplate(kind);
      expect(ak.objectAttributes).toBe(
        base | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.restricted | TPMA_OBJECT.sign,
      );
      expect(key.objectAttributes).toBe(base | TPMA_OBJECT.userWithAuth | TPMA_OBJECT.sign);
      expect(ak.scheme?.hashAlg).toBe(kind === "ecc384" ? TPM_ALG.SHA384 : TPM_ALG.SHA256);
      // Templates round-trip through the strict parser.
      expect(unmarshalTpmtPublic(marshalTpmtPublic(ak))).toEqual(ak);
    }
  });

  it("policy A is PolicySecret(TPM_RH_ENDORSEMENT); policy B (SHA-384) is not a plain PolicySecret", () => {
    expect(policySecretDigest(TPM_ALG.SHA256, TPM_RH.ENDORSEMENT)).toEqual(EK_POLICY_A_SHA256);
    expect(policySecretDigest(TPM_ALG.SHA384, TPM_RH.ENDORSEMENT)).not.toEqual(EK_POLICY_B_SHA384);
  });
});
