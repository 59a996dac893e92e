import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  computePcrDigest,
  marshalAttest,
  marshalCreationData,
  marshalTpm2bCreationData,
  objectName,
  pcrSelectionOf,
  TPM_ALG,
  TPM_GENERATED_VALUE,
  TPM_ST,
  type TpmsAttest,
  unmarshalAttest,
  unmarshalTpm2bCreationData,
  unmarshalTpm2bPublic,
} from "../../src/tpm/index.js";
import { fx, fxText } from "./helpers/fixtures.js";

const ATTESTS = [
  "certify/ecc-key.by-rsa-ak.attest",
  "certify/rsa-key.by-ecc-ak.attest",
  "certify/ecc-key.tpm2_certify.attest",
  "certify/ecc-key.creation.attest",
  "quote/rsa2048.msg",
  "quote/ecc384.msg",
].map((p) => `swtpm/${p}`);

function parse(path: string): TpmsAttest {
  return unmarshalAttest(fx(path));
}

describe("TPMS_ATTEST of the swtpm artefacts", () => {
  it.each(ATTESTS)("%s round-trips exactly and is TPM-generated", (p) => {
    const a = parse(p);
    expect(marshalAttest(a).equals(fx(p))).toBe(true);
    expect(a.magic).toBe(TPM_GENERATED_VALUE);
  });

  it("certify by the RSA AK: signer QN, nonce, certified Name, clock info", () => {
    const a = parse("swtpm/certify/ecc-key.by-rsa-ak.attest");
    if (a.type !== TPM_ST.ATTEST_CERTIFY) throw new Error("type");
    expect(a.qualifiedSigner.equals(fx("swtpm/ak/rsa2048.qname"))).toBe(true);
    expect(a.extraData.toString("hex")).toBe(fxText("swtpm/certify/nonce.hex"));
    expect(a.attested.name.equals(objectName(unmarshalTpm2bPublic(fx("swtpm/keys/ecc.pub"))))).toBe(true);
    expect(a.attested.qualifiedName.length).toBe(34);
    expect(a.clockInfo.safe).toBe(true);
    expect(a.clockInfo.restartCount).toBe(0);
    expect(a.firmwareVersion).toBe(0x2019102300163636n);
    expect(typeof a.clockInfo.clock).toBe("bigint");
  });

  it("certify by the ECC AK under the P-384 EK carries a 50-byte SHA-384 qualifiedSigner", () => {
    const a = parse("swtpm/certify/rsa-key.by-ecc-ak.attest");
    expect(a.type).toBe(TPM_ST.ATTEST_CERTIFY);
    expect(a.qualifiedSigner.equals(fx("swtpm/ak/ecc384.qname"))).toBe(true);
    if (a.type === TPM_ST.ATTEST_CERTIFY) {
      expect(a.attested.name.equals(objectName(unmarshalTpm2bPublic(fx("swtpm/keys/rsa.pub"))))).toBe(true);
    }
  });

  it("tpm2_certify (5.4) hard-codes extraData 00ff55aa", () => {
    expect(parse("swtpm/certify/ecc-key.tpm2_certify.attest").extraData.toString("hex")).toBe("00ff55aa");
  });

  it("creation attest: objectName is the key's Name, creationHash = SHA-256(TPMS_CREATION_DATA)", () => {
    const a = parse("swtpm/certify/ecc-key.creation.attest");
    if (a.type !== TPM_ST.ATTEST_CREATION) throw new Error("type");
    expect(a.attested.objectName.equals(fx("swtpm/keys/ecc.name"))).toBe(true);
    const cdataBytes = fx("swtpm/keys/ecc.cdata");
    const cdata = unmarshalTpm2bCreationData(cdataBytes);
    expect(marshalTpm2bCreationData(cdata).equals(cdataBytes)).toBe(true);
    const hash = createHash("sha256").update(marshalCreationData(cdata)).digest();
    expect(a.attested.creationHash.equals(hash)).toBe(true);
    expect(fx("swtpm/keys/ecc.chash").subarray(2).equals(hash)).toBe(true);
    expect(cdata.locality).toBe(1);
    expect(cdata.parentNameAlg).toBe(TPM_ALG.SHA256);
  });

  it.each(["rsa2048", "ecc384"])(
    "quote %s: selection sha256:0,1,2,3,7 and pcrDigest = SHA-256(values)",
    (t) => {
      const a = parse(`swtpm/quote/${t}.msg`);
      if (a.type !== TPM_ST.ATTEST_QUOTE) throw new Error("type");
      expect(a.extraData.toString("hex")).toBe(fxText(`swtpm/quote/${t}.nonce.hex`));
      expect(a.qualifiedSigner.equals(fx(`swtpm/ak/${t}.qname`))).toBe(true);
      const sel = pcrSelectionOf(TPM_ALG.SHA256, [0, 1, 2, 3, 7]);
      expect(a.attested.pcrSelect).toEqual([sel]);
      const raw = fx(`swtpm/quote/${t}.pcrvalues.bin`);
      const values = new Map([
        [TPM_ALG.SHA256, new Map([0, 1, 2, 3, 7].map((p, i) => [p, raw.subarray(32 * i, 32 * i + 32)]))],
      ]);
      expect(
        computePcrDigest(TPM_ALG.SHA256, a.attested.pcrSelect, values).equals(a.attested.pcrDigest),
      ).toBe(true);
      expect(createHash("sha256").update(raw).digest().equals(a.attested.pcrDigest)).toBe(true);
    },
  );

  it("magic is reported, not judged: a wrong magic parses and is visible to the caller", () => {
    const bytes = Buffer.from(fx("swtpm/quote/rsa2048.msg"));
    bytes.writeUInt32BE(0xff544348, 0);
    const a = unmarshalAttest(bytes);
    expect(a.magic).not.toBe(TPM_GENERATED_VALUE);
    expect(marshalAttest(a).equals(bytes)).toBe(true);
  });
});
