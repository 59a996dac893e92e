import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { akQualifiedNameUnderEk, checkAkPublic } from "../../src/devices/ak-policy.js";
import { isMayflyError, type MayflyError } from "../../src/errors/index.js";
import {
  marshalTpm2bPublic,
  TPM_ALG,
  TPMA_OBJECT,
  type TpmtPublic,
  unmarshalTpm2bPublic,
  unmarshalTpmtPublic,
} from "../../src/tpm/index.js";
import { AK_ATTRS, simKey } from "../evidence/helpers/tpm-sim.js";
import { tpmFx } from "./helpers/ek-fixtures.js";

function akInvalid(pub: Buffer | TpmtPublic, field: string): MayflyError {
  let caught: unknown;
  try {
    checkAkPublic(pub);
  } catch (e) {
    caught = e;
  }
  expect(isMayflyError(caught), String(caught)).toBe(true);
  const e = caught as MayflyError;
  expect(e.code).toBe("device.ak_invalid");
  expect(e.field).toBe(field);
  return e;
}

describe("AKs from a real swtpm (tpm2_createak)", () => {
  it.each([
    ["rsa2048", "sha256", "rsa-2048", "rsassa"],
    ["ecc384", "sha384", "ecc-p256", "ecdsa"], // under the P-384 EK the AK's nameAlg is SHA-384
    ["ecc256", "sha256", "ecc-p256", "ecdsa"],
  ])("%s passes; the CA computes its Name and, under the EK, its QN", (t, nameAlg, keyType, scheme) => {
    const facts = checkAkPublic(tpmFx(`swtpm/ak/${t}.pub`));
    expect(facts).toMatchObject({ nameAlg, keyType, scheme, schemeHash: "sha256" });
    expect(facts.name.equals(tpmFx(`swtpm/ak/${t}.name`))).toBe(true);
    expect(facts.name.equals(tpmFx(`swtpm/ak/${t}.loadexternal.name`))).toBe(true);
    const ek = unmarshalTpm2bPublic(tpmFx(`swtpm/ek/${t}.pub`));
    expect(akQualifiedNameUnderEk(ek, facts.name).equals(tpmFx(`swtpm/ak/${t}.qname`))).toBe(true);
  });

  it("a real Google vTPM AK passes; a real Windows (GCP) AK with an RSASSA-SHA1 scheme does not", () => {
    expect(checkAkPublic(unmarshalTpmtPublic(tpmFx("real/gce-vtpm/ak_pub.tpmt_public.bin")))).toMatchObject({
      keyType: "rsa-2048",
    });
    akInvalid(
      unmarshalTpmtPublic(tpmFx("real/gcp-windows/ak_public.tpmt_public.bin")),
      "akPublic.parameters.rsaDetail.scheme.details.hashAlg",
    );
  });

  it("an EK is not an AK", () => {
    akInvalid(tpmFx("swtpm/ek/rsa2048.pub"), "akPublic.objectAttributes.sign");
  });
});

describe("AK rules, one member at a time", () => {
  const ak = (over: Partial<Record<keyof TpmtPublic, unknown>> = {}, attrs = AK_ATTRS) =>
    simKey("p256", attrs, over).pub;

  it("a well-formed software-made public area passes (the rules are about the area)", () => {
    expect(checkAkPublic(marshalTpm2bPublic(ak())).keyType).toBe("ecc-p256");
  });

  it.each([
    ["restricted", AK_ATTRS & ~TPMA_OBJECT.restricted],
    ["sign", AK_ATTRS & ~TPMA_OBJECT.sign],
    ["fixedTPM", AK_ATTRS & ~TPMA_OBJECT.fixedTPM],
    ["fixedParent", AK_ATTRS & ~TPMA_OBJECT.fixedParent],
    ["sensitiveDataOrigin", AK_ATTRS & ~TPMA_OBJECT.sensitiveDataOrigin],
    ["decrypt", AK_ATTRS | TPMA_OBJECT.decrypt],
  ])("objectAttributes.%s", (attr, attrs) => {
    const e = akInvalid(ak({}, attrs), `akPublic.objectAttributes.${attr}`);
    expect(e.detail).toContain(attr);
  });

  it("userWithAuth, noDA and adminWithPolicy are allowed either way", () => {
    for (const attrs of [
      AK_ATTRS & ~TPMA_OBJECT.userWithAuth,
      AK_ATTRS | TPMA_OBJECT.noDA,
      AK_ATTRS | TPMA_OBJECT.adminWithPolicy,
    ]) {
      expect(checkAkPublic(ak({}, attrs)).scheme).toBe("ecdsa");
    }
  });

  it("nameAlg SHA-1 or SHA-512", () => {
    akInvalid(ak({ nameAlg: TPM_ALG.SHA1 }), "akPublic.nameAlg");
    akInvalid(ak({ nameAlg: TPM_ALG.SHA512 }), "akPublic.nameAlg");
    expect(checkAkPublic(ak({ nameAlg: TPM_ALG.SHA384 })).nameAlg).toBe("sha384");
  });

  it("key strength: RSA-1024, e = 3, P-521; RSA-3072 and P-384 pass", () => {
    const rsa1024 = simKey("rsa2048", AK_ATTRS, {}, generateKeyPairSync("rsa", { modulusLength: 1024 })).pub;
    akInvalid(rsa1024, "akPublic.parameters.rsaDetail.keyBits");
    const e3 = simKey(
      "rsa2048",
      AK_ATTRS,
      {},
      generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 3 }),
    );
    akInvalid(e3.pub, "akPublic.parameters.rsaDetail.exponent");
    const p521 = simKey("p256", AK_ATTRS, {}, generateKeyPairSync("ec", { namedCurve: "secp521r1" })).pub;
    akInvalid(p521, "akPublic.parameters.eccDetail.curveID");
    const rsa3072 = simKey("rsa2048", AK_ATTRS, {}, generateKeyPairSync("rsa", { modulusLength: 3072 })).pub;
    expect(checkAkPublic(rsa3072).keyType).toBe("rsa-3072");
    expect(checkAkPublic(simKey("p384", AK_ATTRS).pub).keyType).toBe("ecc-p384");
  });

  it("an explicit exponent of 65537 is the same as 0", () => {
    const rsa = simKey("rsa2048", AK_ATTRS).pub;
    expect(checkAkPublic({ ...rsa, exponent: 65537 } as TpmtPublic).keyType).toBe("rsa-2048");
  });

  it("a point that is not on the curve", () => {
    const pub = ak();
    if (pub.type !== TPM_ALG.ECC) throw new Error("ecc");
    akInvalid({ ...pub, unique: { x: pub.unique.x, y: Buffer.alloc(32, 1) } }, "akPublic.unique");
  });

  it("schemes: NULL, ECDSA-SHA1, ECDSA-SHA512, ECDAA; RSAPSS-SHA384 passes", () => {
    const s = "akPublic.parameters.eccDetail.scheme";
    akInvalid(ak({ scheme: null }), s);
    akInvalid(ak({ scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA1 } }), `${s}.details.hashAlg`);
    akInvalid(ak({ scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA512 } }), `${s}.details.hashAlg`);
    akInvalid(ak({ scheme: { scheme: TPM_ALG.ECDAA, hashAlg: TPM_ALG.SHA256, count: 0 } }), s);
    const pss = simKey("rsa2048", AK_ATTRS, {
      scheme: { scheme: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA384 },
    }).pub;
    expect(checkAkPublic(pss)).toMatchObject({ scheme: "rsapss", schemeHash: "sha384" });
  });

  it("malformed bytes fail in the parser with tpm.malformed", () => {
    expect(() => checkAkPublic(tpmFx("swtpm/ak/rsa2048.pub").subarray(0, 100))).toThrow(/tpm.malformed/);
  });
});
