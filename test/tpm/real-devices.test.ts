import { createHash, X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  computePcrDigest,
  isHashAlgAllowed,
  marshalAttest,
  marshalCreationData,
  marshalSignature,
  marshalTpmtPublic,
  objectName,
  type PcrBanks,
  publicKeyObject,
  type RsaSignature,
  TPM_ALG,
  TPM_GENERATED_VALUE,
  TPM_ST,
  unmarshalAttest,
  unmarshalCreationData,
  unmarshalSignature,
  unmarshalTpmtPublic,
  verifyTpmSignature,
} from "../../src/tpm/index.js";
import { fx, fxJson } from "./helpers/fixtures.js";

// Structures from real TPMs (Windows Hello on Intel/Nuvoton/STMicro chips, Google vTPMs):
// they must parse strictly, round-trip, and their signatures must verify.

const WEBAUTHN = [
  "real-winhello-nuvoton-npct75x-ecc-p256",
  "real-winhello-stm-st33htph-lenovo-x1-carbon",
  "real-winhello-intel-ptt-surface-pro-4",
  "synthetic-fidotest-tpm-aaguid-ext-match",
];

describe("WebAuthn 'tpm' attestations (pubArea, certInfo, AIK signature)", () => {
  it.each(WEBAUTHN)("%s", (id) => {
    const dir = `real/webauthn/${id}`;
    const meta = fxJson<{ alg: number; realHardware: boolean }>(`${dir}/meta.json`);
    const pubArea = fx(`${dir}/pubArea.bin`);
    const certInfo = fx(`${dir}/certInfo.bin`);
    const pub = unmarshalTpmtPublic(pubArea);
    expect(marshalTpmtPublic(pub).equals(pubArea)).toBe(true);
    const attest = unmarshalAttest(certInfo);
    expect(marshalAttest(attest).equals(certInfo)).toBe(true);
    expect(attest.magic).toBe(TPM_GENERATED_VALUE);
    if (attest.type !== TPM_ST.ATTEST_CERTIFY) throw new Error("not a certify");
    expect(attest.attested.name.equals(objectName(pub))).toBe(true);
    publicKeyObject(pub); // the credential key itself is a valid key
    // sig.bin is a bare RSASSA signature by the AIK (x5c[0]), hash given by the COSE alg.
    const hashAlg = meta.alg === -65535 ? TPM_ALG.SHA1 : TPM_ALG.SHA256;
    const sig: RsaSignature = { sigAlg: TPM_ALG.RSASSA, hashAlg, sig: fx(`${dir}/sig.bin`) };
    const aik = new X509Certificate(fx(`${dir}/x5c-0.der`)).publicKey;
    expect(verifyTpmSignature(sig, certInfo, aik)).toBe(true);
    expect(verifyTpmSignature(sig, Buffer.concat([certInfo, Buffer.from([0])]), aik)).toBe(false);
    // The real Windows Hello ones sign with SHA-1: a verifying signature Mayfly must still refuse.
    expect(isHashAlgAllowed(hashAlg)).toBe(!meta.realHardware);
  });

  it("the ECC credential key is P-256 with a NULL scheme; Lenovo's RSA key has its own attributes", () => {
    const ecc = unmarshalTpmtPublic(fx("real/webauthn/real-winhello-nuvoton-npct75x-ecc-p256/pubArea.bin"));
    expect(ecc.type).toBe(TPM_ALG.ECC);
    expect(ecc.scheme).toBeNull();
    const stm = unmarshalTpmtPublic(
      fx("real/webauthn/real-winhello-stm-st33htph-lenovo-x1-carbon/pubArea.bin"),
    );
    expect(stm.objectAttributes).toBe(0x00060432);
  });

  it("the synthetic vector has an empty qualifiedSigner, which parses", () => {
    const a = unmarshalAttest(fx("real/webauthn/synthetic-fidotest-tpm-aaguid-ext-match/certInfo.bin"));
    expect(a.qualifiedSigner.length).toBe(0);
  });
});

describe("Google GCE vTPM quotes (SHA-1, SHA-256, SHA-384 banks, nonce 0x9009)", () => {
  const ak = unmarshalTpmtPublic(fx("real/gce-vtpm/ak_pub.tpmt_public.bin"));
  const decoded = fxJson<{ quotes: Array<{ pcrHashAlgo: number; pcrs: Record<string, string> }> }>(
    "real/gce-vtpm/pb-decoded.json",
  );

  it("the AK is a restricted RSASSA-SHA256 signing key and round-trips", () => {
    expect(marshalTpmtPublic(ak).equals(fx("real/gce-vtpm/ak_pub.tpmt_public.bin"))).toBe(true);
    expect(ak.objectAttributes).toBe(0x00050072);
    expect(ak.scheme).toEqual({ scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 });
  });

  it.each([0, 1, 2])("quote %i: round-trips, verifies, and its pcrDigest matches the PCR values", (i) => {
    const bytes = fx(`real/gce-vtpm/quote-${i}.tpms_attest.bin`);
    const sigBytes = fx(`real/gce-vtpm/quote-${i}.tpmt_signature.bin`);
    const q = unmarshalAttest(bytes);
    const sig = unmarshalSignature(sigBytes);
    expect(marshalAttest(q).equals(bytes)).toBe(true);
    expect(marshalSignature(sig).equals(sigBytes)).toBe(true);
    expect(verifyTpmSignature(sig, bytes, ak)).toBe(true);
    if (q.type !== TPM_ST.ATTEST_QUOTE) throw new Error("not a quote");
    expect(q.extraData.toString("hex")).toBe("9009");
    const bank = decoded.quotes[i]!;
    expect(q.attested.pcrSelect.map((s) => s.hashAlg)).toEqual([bank.pcrHashAlgo]);
    const values: PcrBanks = new Map([
      [
        bank.pcrHashAlgo,
        new Map(Object.entries(bank.pcrs).map(([k, v]) => [Number(k), Buffer.from(v, "hex")])),
      ],
    ]);
    expect(computePcrDigest(sig.hashAlg, q.attested.pcrSelect, values).equals(q.attested.pcrDigest)).toBe(
      true,
    );
  });
});

describe("Windows on a GCP Shielded VM (go-attestation): SHA-1 AK", () => {
  const dir = "real/gcp-windows";
  const ak = unmarshalTpmtPublic(fx(`${dir}/ak_public.tpmt_public.bin`));

  it("creation data and creation attestation: objectName = Name(AK), creationHash = SHA-256(data)", () => {
    const cdBytes = fx(`${dir}/ak_creation_data.tpms_creation_data.bin`);
    const cd = unmarshalCreationData(cdBytes);
    expect(marshalCreationData(cd).equals(cdBytes)).toBe(true);
    const attBytes = fx(`${dir}/ak_creation_attestation.tpms_attest.bin`);
    const att = unmarshalAttest(attBytes);
    expect(marshalAttest(att).equals(attBytes)).toBe(true);
    if (att.type !== TPM_ST.ATTEST_CREATION) throw new Error("not a creation attest");
    expect(att.attested.objectName.equals(objectName(ak))).toBe(true);
    expect(att.attested.creationHash.equals(createHash("sha256").update(cdBytes).digest())).toBe(true);
    const sig = unmarshalSignature(fx(`${dir}/ak_creation_signature.tpmt_signature.bin`));
    expect(verifyTpmSignature(sig, attBytes, ak)).toBe(true);
    expect(sig.hashAlg).toBe(TPM_ALG.SHA1);
    expect(isHashAlgAllowed(sig.hashAlg)).toBe(false);
  });

  it("the SHA-1-bank quote verifies and its pcrDigest is SHA-1 over the values", () => {
    const bytes = fx(`${dir}/quote.tpms_attest.bin`);
    const q = unmarshalAttest(bytes);
    expect(marshalAttest(q).equals(bytes)).toBe(true);
    const sig = unmarshalSignature(fx(`${dir}/quote_signature.tpmt_signature.bin`));
    expect(verifyTpmSignature(sig, bytes, ak)).toBe(true);
    if (q.type !== TPM_ST.ATTEST_QUOTE) throw new Error("not a quote");
    expect(q.extraData.length).toBe(0);
    const pcrs = fxJson<{ pcrs: Record<string, Record<string, string>> }>(`${dir}/pcrs.json`).pcrs["3"] ?? {};
    const values: PcrBanks = new Map([
      [TPM_ALG.SHA1, new Map(Object.entries(pcrs).map(([k, v]) => [Number(k), Buffer.from(v, "hex")]))],
    ]);
    expect(computePcrDigest(TPM_ALG.SHA1, q.attested.pcrSelect, values).equals(q.attested.pcrDigest)).toBe(
      true,
    );
  });
});
