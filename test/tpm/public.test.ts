import { createPublicKey } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  type EccPublic,
  keyParamsFromKeyObject,
  marshalTpm2bPublic,
  marshalTpmtPublic,
  publicKeyObject,
  publicSpkiDer,
  type RsaPublic,
  rsaExponent,
  TPM_ALG,
  TPM_ECC_CURVE,
  TPMA_OBJECT,
  unmarshalTpm2bPublic,
  unmarshalTpmtPublic,
} from "../../src/tpm/index.js";
import { EK_TYPES, fx, fxText } from "./helpers/fixtures.js";

const PUBS = [
  ...EK_TYPES.map((t) => `ek/${t}`),
  ...EK_TYPES.map((t) => `ak/${t}`),
  "keys/ecc",
  "keys/rsa",
].map((p) => `swtpm/${p}`);

const POLICY_A = "837197674484b3f81a90cc8d46a5d724fd52d76e06520b64f2a1da1b331469aa";
const POLICY_B =
  "b26e7d28d11a50bc53d882bcf5fd3a1a074148bb35d3b4e4cb1c0ad9bde419cacb47ba09699646150f9fc000f3f80e12";

function spkiFromPem(path: string): Buffer {
  return createPublicKey(fxText(path)).export({ type: "spki", format: "der" });
}

describe("TPM2B_PUBLIC / TPMT_PUBLIC of the swtpm artefacts", () => {
  it.each(PUBS)("%s round-trips exactly, as TPM2B and as bare TPMT", (p) => {
    const bytes = fx(`${p}.pub`);
    const pub = unmarshalTpm2bPublic(bytes);
    expect(marshalTpm2bPublic(pub).equals(bytes)).toBe(true);
    expect(marshalTpmtPublic(pub).equals(bytes.subarray(2))).toBe(true);
    expect(unmarshalTpmtPublic(bytes.subarray(2))).toEqual(pub);
  });

  it.each(PUBS.filter((p) => !p.includes("keys/")))("%s.tpmt equals the TPM2B body", (p) => {
    expect(fx(`${p}.tpmt`).equals(fx(`${p}.pub`).subarray(2))).toBe(true);
  });

  it.each(PUBS)("%s converts to the SPKI tpm2_readpublic wrote", (p) => {
    const pub = unmarshalTpm2bPublic(fx(`${p}.pub`));
    expect(publicSpkiDer(pub).equals(spkiFromPem(`${p}.pub.pem`))).toBe(true);
  });

  it.each(PUBS)("%s: the unique field rebuilt from the PEM key equals the TPM's", (p) => {
    const pub = unmarshalTpm2bPublic(fx(`${p}.pub`));
    const params = keyParamsFromKeyObject(createPublicKey(fxText(`${p}.pub.pem`)));
    const rebuilt = { ...pub, ...params };
    expect(marshalTpmtPublic(rebuilt as typeof pub).equals(marshalTpmtPublic(pub))).toBe(true);
  });

  it("the RSA EK is the TCG L-1 template, every field", () => {
    const ek = unmarshalTpm2bPublic(fx("swtpm/ek/rsa2048.pub")) as RsaPublic;
    expect(ek.type).toBe(TPM_ALG.RSA);
    expect(ek.nameAlg).toBe(TPM_ALG.SHA256);
    expect(ek.objectAttributes).toBe(0x000300b2);
    expect(ek.authPolicy.toString("hex")).toBe(POLICY_A);
    expect(ek.symmetric).toEqual({ algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CFB });
    expect(ek.scheme).toBeNull();
    expect(ek.keyBits).toBe(2048);
    expect(ek.exponent).toBe(0);
    expect(rsaExponent(ek)).toBe(65537);
    expect(ek.unique.length).toBe(256);
  });

  it("the P-384 EK is the TCG H-3 template: SHA-384, AES-256-CFB, userWithAuth", () => {
    const ek = unmarshalTpm2bPublic(fx("swtpm/ek/ecc384.pub")) as EccPublic;
    expect(ek.type).toBe(TPM_ALG.ECC);
    expect(ek.nameAlg).toBe(TPM_ALG.SHA384);
    expect(ek.objectAttributes).toBe(0x000300f2);
    expect(ek.objectAttributes & TPMA_OBJECT.userWithAuth).toBeTruthy();
    expect(ek.authPolicy.toString("hex")).toBe(POLICY_B);
    expect(ek.symmetric).toEqual({ algorithm: TPM_ALG.AES, keyBits: 256, mode: TPM_ALG.CFB });
    expect(ek.scheme).toBeNull();
    expect(ek.curveId).toBe(TPM_ECC_CURVE.NIST_P384);
    expect(ek.kdf).toBeNull();
    expect(ek.unique.x.length).toBe(48);
    expect(ek.unique.y.length).toBe(48);
  });

  it("AKs are restricted signing keys with a fixed scheme; the AK under the P-384 EK inherits SHA-384", () => {
    const rsa = unmarshalTpm2bPublic(fx("swtpm/ak/rsa2048.pub"));
    expect(rsa.objectAttributes).toBe(0x00050072);
    expect(rsa.scheme).toEqual({ scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 });
    expect(rsa.symmetric).toBeNull();
    const ecc = unmarshalTpm2bPublic(fx("swtpm/ak/ecc384.pub")) as EccPublic;
    expect(ecc.nameAlg).toBe(TPM_ALG.SHA384);
    expect(ecc.scheme).toEqual({ scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 });
    expect(ecc.curveId).toBe(TPM_ECC_CURVE.NIST_P256);
  });

  it("scheme details with extra fields (ECDAA count, RSAES without hash, KDF) round-trip", () => {
    const base = unmarshalTpm2bPublic(fx("swtpm/ak/ecc256.pub")) as EccPublic;
    const ecdaa: EccPublic = {
      ...base,
      scheme: { scheme: TPM_ALG.ECDAA, hashAlg: TPM_ALG.SHA256, count: 7 },
      kdf: { scheme: TPM_ALG.KDF1_SP800_56A, hashAlg: TPM_ALG.SHA384 },
    };
    expect(unmarshalTpmtPublic(marshalTpmtPublic(ecdaa))).toEqual(ecdaa);
    const rsaBase = unmarshalTpm2bPublic(fx("swtpm/ak/rsa2048.pub")) as RsaPublic;
    for (const scheme of [
      { scheme: TPM_ALG.RSAES },
      { scheme: TPM_ALG.OAEP, hashAlg: TPM_ALG.SHA384 },
      { scheme: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA512 },
    ]) {
      const p: RsaPublic = { ...rsaBase, scheme, exponent: 3 };
      expect(unmarshalTpmtPublic(marshalTpmtPublic(p))).toEqual(p);
    }
  });

  it("publicKeyObject gives node keys of the right kind", () => {
    const k = publicKeyObject(unmarshalTpm2bPublic(fx("swtpm/ek/ecc384.pub")));
    expect(k.asymmetricKeyType).toBe("ec");
    expect(k.asymmetricKeyDetails?.namedCurve).toBe("secp384r1");
    const r = publicKeyObject(unmarshalTpm2bPublic(fx("swtpm/ek/rsa2048.pub")));
    expect(r.asymmetricKeyDetails).toMatchObject({ modulusLength: 2048, publicExponent: 65537n });
  });
});
