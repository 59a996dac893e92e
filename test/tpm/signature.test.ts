import { constants, generateKeyPairSync, sign } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  type EcdsaSignature,
  isHashAlgAllowed,
  marshalSignature,
  type RsaSignature,
  TPM_ALG,
  unmarshalSignature,
  unmarshalTpm2bPublic,
  verifyTpmSignature,
} from "../../src/tpm/index.js";
import { fx } from "./helpers/fixtures.js";

// [signed bytes, signature, signing AK]
const SIGNED: Array<[string, string, string]> = [
  ["certify/ecc-key.by-rsa-ak.attest", "certify/ecc-key.by-rsa-ak.sig", "ak/rsa2048"],
  ["certify/rsa-key.by-ecc-ak.attest", "certify/rsa-key.by-ecc-ak.sig", "ak/ecc384"],
  ["certify/ecc-key.tpm2_certify.attest", "certify/ecc-key.tpm2_certify.sig", "ak/rsa2048"],
  ["certify/ecc-key.creation.attest", "certify/ecc-key.creation.sig", "ak/rsa2048"],
  ["quote/rsa2048.msg", "quote/rsa2048.sig", "ak/rsa2048"],
  ["quote/ecc384.msg", "quote/ecc384.sig", "ak/ecc384"],
];

describe("TPMT_SIGNATURE of the swtpm artefacts", () => {
  it.each(SIGNED)("%s: signature round-trips and verifies with its AK", (msg, sigPath, ak) => {
    const sigBytes = fx(`swtpm/${sigPath}`);
    const sig = unmarshalSignature(sigBytes);
    expect(marshalSignature(sig).equals(sigBytes)).toBe(true);
    const akPub = unmarshalTpm2bPublic(fx(`swtpm/${ak}.pub`));
    const message = fx(`swtpm/${msg}`);
    expect(verifyTpmSignature(sig, message, akPub)).toBe(true);
    expect(isHashAlgAllowed(sig.hashAlg)).toBe(true);
  });

  it.each(SIGNED)("%s: one flipped message bit or the other AK fails", (msg, sigPath, ak) => {
    const sig = unmarshalSignature(fx(`swtpm/${sigPath}`));
    const message = Buffer.from(fx(`swtpm/${msg}`));
    message[message.length - 1]! ^= 1;
    const akPub = unmarshalTpm2bPublic(fx(`swtpm/${ak}.pub`));
    expect(verifyTpmSignature(sig, message, akPub)).toBe(false);
    const other = unmarshalTpm2bPublic(
      fx(ak.includes("rsa") ? "swtpm/ak/ecc256.pub" : "swtpm/ak/rsa2048.pub"),
    );
    expect(verifyTpmSignature(sig, fx(`swtpm/${msg}`), other)).toBe(false);
  });

  it("RSASSA layout: 00 14 | 00 0b | u16 256 | the bare PKCS#1 signature", () => {
    const sig = unmarshalSignature(fx("swtpm/certify/ecc-key.by-rsa-ak.sig")) as RsaSignature;
    expect(sig.sigAlg).toBe(TPM_ALG.RSASSA);
    expect(sig.hashAlg).toBe(TPM_ALG.SHA256);
    expect(sig.sig.equals(fx("swtpm/certify/ecc-key.by-rsa-ak.sig.raw"))).toBe(true);
  });

  it("ECDSA layout: r and s as TPM2B; a short r (leading zero dropped) still verifies", () => {
    const sig = unmarshalSignature(fx("swtpm/quote/ecc384.sig")) as EcdsaSignature;
    expect(sig.sigAlg).toBe(TPM_ALG.ECDSA);
    expect(sig.signatureR.length).toBe(32);
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const msg = Buffer.from("mayfly");
    // A TPM may send r without its leading zero byte (about 1 in 256 signatures): search for one.
    // p(no hit in 4000) is about 1e-7.
    for (let i = 0; i < 4000; i++) {
      const p1363 = sign("sha256", Buffer.concat([msg, Buffer.from([i])]), {
        key: privateKey,
        dsaEncoding: "ieee-p1363",
      });
      if (p1363[0] !== 0) continue;
      const s: EcdsaSignature = {
        sigAlg: TPM_ALG.ECDSA,
        hashAlg: TPM_ALG.SHA256,
        signatureR: p1363.subarray(1, 32),
        signatureS: p1363.subarray(32),
      };
      expect(verifyTpmSignature(s, Buffer.concat([msg, Buffer.from([i])]), publicKey)).toBe(true);
      expect(
        verifyTpmSignature(
          { ...s, signatureR: Buffer.concat([Buffer.from([1]), p1363.subarray(0, 32)]) },
          msg,
          publicKey,
        ),
      ).toBe(false);
      return;
    }
    throw new Error("no signature with a leading zero byte in r in 4000 tries");
  });

  it("RSAPSS (salt = digest size, as TPMs do) verifies and round-trips", () => {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const msg = Buffer.from("attest");
    const raw = sign("sha384", msg, {
      key: privateKey,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: 48,
    });
    const sig: RsaSignature = { sigAlg: TPM_ALG.RSAPSS, hashAlg: TPM_ALG.SHA384, sig: raw };
    expect(unmarshalSignature(marshalSignature(sig))).toEqual(sig);
    expect(verifyTpmSignature(sig, msg, publicKey)).toBe(true);
    expect(verifyTpmSignature({ ...sig, sigAlg: TPM_ALG.RSASSA }, msg, publicKey)).toBe(false);
    expect(verifyTpmSignature({ ...sig, hashAlg: TPM_ALG.SHA256 }, msg, publicKey)).toBe(false);
  });

  it("SHA-1 verifies as a fact, and is flagged as not allowed", () => {
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const msg = Buffer.from("old windows");
    const sig: RsaSignature = {
      sigAlg: TPM_ALG.RSASSA,
      hashAlg: TPM_ALG.SHA1,
      sig: sign("sha1", msg, privateKey),
    };
    expect(verifyTpmSignature(sig, msg, publicKey)).toBe(true);
    expect(isHashAlgAllowed(sig.hashAlg)).toBe(false);
    expect(isHashAlgAllowed(TPM_ALG.SHA384)).toBe(true);
    expect(isHashAlgAllowed(0x0099)).toBe(false);
  });

  it("a truncated RSA signature is false, not a throw", () => {
    const sig = unmarshalSignature(fx("swtpm/quote/rsa2048.sig")) as RsaSignature;
    const ak = unmarshalTpm2bPublic(fx("swtpm/ak/rsa2048.pub"));
    expect(verifyTpmSignature({ ...sig, sig: sig.sig.subarray(1) }, fx("swtpm/quote/rsa2048.msg"), ak)).toBe(
      false,
    );
  });
});
