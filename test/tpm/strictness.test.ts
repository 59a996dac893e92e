import { describe, expect, it } from "vitest";
import {
  decodeTpm2ToolsCredential,
  marshalTpmtPublic,
  type RsaPublic,
  unmarshalAttest,
  unmarshalSignature,
  unmarshalTpm2bCreationData,
  unmarshalTpm2bPublic,
  unmarshalTpmtPublic,
} from "../../src/tpm/index.js";
import { expectTpmError } from "./helpers/expect-tpm-error.js";
import { fx } from "./helpers/fixtures.js";

// Change-one-field negatives: every one names the field, in spec spelling, and uses the code
// that says whether the bytes are broken (malformed) or valid but not handled (unsupported).

function patch(path: string, offset: number, hexValue: string): Buffer {
  const b = Buffer.from(fx(path));
  Buffer.from(hexValue, "hex").copy(b, offset);
  return b;
}

const STRUCTS: Array<[string, (b: Buffer) => unknown, string, string]> = [
  ["swtpm/ek/rsa2048.pub", unmarshalTpm2bPublic, "TPM2B_PUBLIC", "TPM2B_PUBLIC"],
  ["swtpm/ak/ecc256.tpmt", unmarshalTpmtPublic, "TPMT_PUBLIC", "TPMT_PUBLIC"],
  ["swtpm/certify/ecc-key.by-rsa-ak.attest", unmarshalAttest, "TPMS_ATTEST", "TPMS_ATTEST"],
  ["swtpm/quote/ecc384.msg", unmarshalAttest, "TPMS_ATTEST", "TPMS_ATTEST"],
  ["swtpm/certify/ecc-key.creation.attest", unmarshalAttest, "TPMS_ATTEST", "TPMS_ATTEST"],
  ["swtpm/quote/ecc384.sig", unmarshalSignature, "TPMT_SIGNATURE", "TPMT_SIGNATURE"],
  ["swtpm/quote/rsa2048.sig", unmarshalSignature, "TPMT_SIGNATURE", "TPMT_SIGNATURE"],
  ["swtpm/keys/ecc.cdata", unmarshalTpm2bCreationData, "TPM2B_CREATION_DATA", "TPM2B_CREATION_DATA"],
  ["swtpm/cred/ecc384.cred", decodeTpm2ToolsCredential, "tpm2-tools credential", "tpm2-tools credential"],
];

describe("truncation and trailing bytes", () => {
  it.each(STRUCTS)("%s: every truncation is tpm.malformed naming a field", (path, parse, prefix) => {
    const bytes = fx(path);
    for (let n = 0; n < bytes.length; n++) {
      const err = expectTpmError(() => parse(bytes.subarray(0, n)), "tpm.malformed");
      expect(err.field?.split(".")[0]).toMatch(/^(TPM|tpm2-tools)/);
      if (n === 0) expect(err.field?.startsWith(prefix)).toBe(true);
    }
  });

  it.each(STRUCTS)("%s: one trailing byte is tpm.malformed on the structure", (path, parse, _, whole) => {
    expectTpmError(() => parse(Buffer.concat([fx(path), Buffer.from([0])])), "tpm.malformed", whole);
  });
});

describe("TPMT_PUBLIC, one field changed", () => {
  const AK_ECC = "swtpm/ak/ecc256.tpmt"; // 0023 000b 00050072 0000 0010 0018 000b 0003 0010 0020 x 0020 y
  const AK_RSA = "swtpm/ak/rsa2048.tpmt"; // 0001 000b 00050072 0000 0010 0014 000b 0800 00000000 0100 n
  const EK_RSA = "swtpm/ek/rsa2048.tpmt"; // ... 0020 policy(32) 0006 0080 0043 0010 0800 00000000 0100 n
  const P = "TPMT_PUBLIC.parameters";
  const cases: Array<[string, string, number, string, "tpm.malformed" | "tpm.unsupported", string]> = [
    ["KEYEDHASH type", AK_ECC, 0, "0008", "tpm.unsupported", "TPMT_PUBLIC.type"],
    ["unknown nameAlg", AK_ECC, 2, "0099", "tpm.unsupported", "TPMT_PUBLIC.nameAlg"],
    ["reserved attribute bit 0", AK_ECC, 4, "00050073", "tpm.malformed", "TPMT_PUBLIC.objectAttributes"],
    ["reserved attribute bit 31", AK_ECC, 4, "80050072", "tpm.malformed", "TPMT_PUBLIC.objectAttributes"],
    ["authPolicy over 64 bytes", AK_ECC, 8, "0041", "tpm.malformed", "TPMT_PUBLIC.authPolicy.size"],
    ["unknown symmetric", AK_ECC, 10, "0099", "tpm.unsupported", `${P}.eccDetail.symmetric.algorithm`],
    ["RSA scheme on an ECC key", AK_ECC, 12, "0014", "tpm.unsupported", `${P}.eccDetail.scheme.scheme`],
    ["NULL hash in a scheme", AK_ECC, 14, "0010", "tpm.unsupported", `${P}.eccDetail.scheme.details.hashAlg`],
    ["unknown curve", AK_ECC, 16, "0099", "tpm.unsupported", `${P}.eccDetail.curveID`],
    ["unknown KDF", AK_ECC, 18, "0099", "tpm.unsupported", `${P}.eccDetail.kdf.scheme`],
    ["x longer than P-256", AK_ECC, 20, "0021", "tpm.malformed", "TPMT_PUBLIC.unique.ecc.x.size"],
    ["ECDSA on an RSA key", AK_RSA, 12, "0018", "tpm.unsupported", `${P}.rsaDetail.scheme.scheme`],
    ["keyBits 2047", AK_RSA, 16, "07ff", "tpm.unsupported", `${P}.rsaDetail.keyBits`],
    ["modulus longer than keyBits", AK_RSA, 22, "0101", "tpm.malformed", "TPMT_PUBLIC.unique.rsa.size"],
    ["AES-100", EK_RSA, 44, "0064", "tpm.unsupported", `${P}.rsaDetail.symmetric.keyBits`],
    ["unknown symmetric mode", EK_RSA, 46, "0099", "tpm.unsupported", `${P}.rsaDetail.symmetric.mode`],
  ];
  it.each(cases)("%s", (_, path, offset, value, code, field) => {
    expectTpmError(() => unmarshalTpmtPublic(patch(path, offset, value)), code, field);
  });

  it("an authPolicy that is neither empty nor a nameAlg digest", () => {
    const ak = unmarshalTpmtPublic(fx(AK_RSA)) as RsaPublic;
    const bytes = marshalTpmtPublic({ ...ak, authPolicy: Buffer.alloc(20) });
    expectTpmError(() => unmarshalTpmtPublic(bytes), "tpm.malformed", "TPMT_PUBLIC.authPolicy.size");
  });

  it("a TPM2B_PUBLIC size that does not match the public area", () => {
    const pub = fx("swtpm/ak/ecc256.pub");
    const longer = Buffer.concat([Buffer.from([0, pub.length - 1]), pub.subarray(2), Buffer.from([0])]);
    expectTpmError(() => unmarshalTpm2bPublic(longer), "tpm.malformed", "TPM2B_PUBLIC.publicArea");
    const shorter = Buffer.concat([Buffer.from([0, pub.length - 3]), pub.subarray(2)]);
    expectTpmError(() => unmarshalTpm2bPublic(shorter), "tpm.malformed", /^TPMT_PUBLIC\.unique/);
  });
});

describe("TPMS_ATTEST and TPMT_SIGNATURE, one field changed", () => {
  // quote/rsa2048.msg: magic 0, type 4, qualifiedSigner 6 (+2+34), extraData 42 (+2+32), clock 76,
  // resetCount 84, restartCount 88, safe 92, firmwareVersion 93, pcrSelect.count 101
  const Q = "swtpm/quote/rsa2048.msg";
  const C = "swtpm/certify/ecc-key.by-rsa-ak.attest"; // same header; name at 101
  const cases: Array<[string, string, number, string, "tpm.malformed" | "tpm.unsupported", string]> = [
    ["ATTEST_NV type", Q, 4, "8014", "tpm.unsupported", "TPMS_ATTEST.type"],
    [
      "signer Name with an unknown alg",
      Q,
      8,
      "0099",
      "tpm.unsupported",
      "TPMS_ATTEST.qualifiedSigner.hashAlg",
    ],
    ["signer Name too long", Q, 6, "0043", "tpm.malformed", "TPMS_ATTEST.qualifiedSigner.size"],
    ["extraData over sizeof(TPMT_HA)", Q, 42, "0043", "tpm.malformed", "TPMS_ATTEST.extraData.size"],
    ["safe = 2", Q, 92, "02", "tpm.malformed", "TPMS_ATTEST.clockInfo.safe"],
    ["17 PCR banks", Q, 101, "00000011", "tpm.malformed", "TPMS_ATTEST.attested.quote.pcrSelect.count"],
    ["certified Name of 3 bytes", C, 101, "0003", "tpm.malformed", "TPMS_ATTEST.attested.certify.name.size"],
  ];
  it.each(cases)("%s", (_, path, offset, value, code, field) => {
    expectTpmError(() => unmarshalAttest(patch(path, offset, value)), code, field);
  });

  it("ECDAA / HMAC / NULL signatures are unsupported; sizes are bounded", () => {
    expectTpmError(
      () => unmarshalSignature(patch("swtpm/quote/ecc384.sig", 0, "001a")),
      "tpm.unsupported",
      "TPMT_SIGNATURE.sigAlg",
    );
    expectTpmError(
      () => unmarshalSignature(Buffer.from("0010", "hex")),
      "tpm.unsupported",
      "TPMT_SIGNATURE.sigAlg",
    );
    expectTpmError(
      () => unmarshalSignature(patch("swtpm/quote/ecc384.sig", 2, "0099")),
      "tpm.unsupported",
      "TPMT_SIGNATURE.signature.ecdsa.hash",
    );
    expectTpmError(
      () => unmarshalSignature(patch("swtpm/quote/ecc384.sig", 4, "0051")),
      "tpm.malformed",
      "TPMT_SIGNATURE.signature.ecdsa.signatureR.size",
    );
    expectTpmError(
      () => unmarshalSignature(patch("swtpm/quote/rsa2048.sig", 4, "0201")),
      "tpm.malformed",
      "TPMT_SIGNATURE.signature.rsassa.sig.size",
    );
  });

  it("a tpm2-tools credential file with the wrong magic or version", () => {
    expectTpmError(
      () => decodeTpm2ToolsCredential(patch("swtpm/cred/rsa2048.cred", 0, "badcc0df")),
      "tpm.malformed",
      "tpm2-tools credential.magic",
    );
    expectTpmError(
      () => decodeTpm2ToolsCredential(patch("swtpm/cred/rsa2048.cred", 4, "00000002")),
      "tpm.malformed",
      "tpm2-tools credential.version",
    );
  });
});
