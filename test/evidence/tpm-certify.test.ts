import { createPublicKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { akQualifiedNameUnderEk } from "../../src/devices/ak-policy.js";
import { type ErrorCode, isMayflyError, type MayflyError } from "../../src/errors/index.js";
import type { EvidenceFacts } from "../../src/evidence/format.js";
import { tpmCertifyFormat, verifyTpmCertify } from "../../src/evidence/tpm-certify.js";
import { type AttestationSigner, deviceSigner } from "../../src/evidence/tpm-common.js";
import {
  marshalAttest,
  marshalSignature,
  marshalTpm2bPublic,
  TPM_ALG,
  TPM_GENERATED_VALUE,
  TPM_ST,
  TPMA_OBJECT,
  type TpmsAttest,
  unmarshalTpm2bPublic,
  unmarshalTpmtPublic,
} from "../../src/tpm/index.js";
import {
  AK_ATTRS,
  b64,
  binding,
  certifyAttestation,
  context,
  device,
  KEY_ATTRS,
  NONCE,
  quoteAttest,
  type SimKey,
  simKey,
  simQualifiedName,
  tpmSign,
} from "./helpers/tpm-sim.js";

const FX = fileURLToPath(new URL("../fixtures/tpm/", import.meta.url));
const fx = (p: string) => readFileSync(FX + p);
const hex = (p: string) => Buffer.from(fx(p).toString("utf8").trim(), "hex");
const pemKey = (p: string) => createPublicKey(fx(p));

async function expectCode(
  p: Promise<unknown> | (() => unknown),
  code: ErrorCode,
  field?: string,
): Promise<MayflyError> {
  let caught: unknown = null;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    caught = e;
  }
  expect(isMayflyError(caught), `expected ${code}, got ${String(caught)}`).toBe(true);
  const e = caught as MayflyError;
  expect(e.code, e.message).toBe(code);
  if (field) expect(e.field).toBe(field);
  return e;
}

/** The activated-AK signer for a swtpm AK, as deviceSigner builds it from the stored record. */
function swtpmSigner(ak: "rsa2048" | "ecc384" | "ecc256", qn: Buffer | null = null): AttestationSigner {
  return deviceSigner(device({ tpm2b: fx(`swtpm/ak/${ak}.pub`), name: fx(`swtpm/ak/${ak}.name`) }), qn);
}

describe("tpm-certify on real swtpm artefacts (raw TPM2_Certify with a caller nonce)", () => {
  const rsaAkCertify = {
    keyPublic: fx("swtpm/keys/ecc.pub"),
    certifyInfo: fx("swtpm/certify/ecc-key.by-rsa-ak.attest"),
    signature: fx("swtpm/certify/ecc-key.by-rsa-ak.sig"),
  };
  const eccAkCertify = {
    keyPublic: fx("swtpm/keys/rsa.pub"),
    certifyInfo: fx("swtpm/certify/rsa-key.by-ecc-ak.attest"),
    signature: fx("swtpm/certify/rsa-key.by-ecc-ak.sig"),
  };
  const nonce = hex("swtpm/certify/nonce.hex");

  it("P-256 key certified by the RSA-2048 AK: every check passes, facts are reported", () => {
    const facts = verifyTpmCertify(rsaAkCertify, {
      signer: swtpmSigner("rsa2048"),
      extraData: nonce,
      csrKey: pemKey("swtpm/keys/ecc.pub.pem"),
    });
    expect(facts).toEqual({
      format: "tpm-certify",
      keyResidency: "tpm",
      details: expect.objectContaining({
        akName: fx("swtpm/ak/rsa2048.name").toString("hex"),
        certifiedName: fx("swtpm/keys/ecc.name").toString("hex"),
        keyType: "ecc-p256",
        signatureScheme: "rsassa",
        signatureHash: "sha256",
        firmwareVersion: "0x2019102300163636",
        restartCount: 0,
        clockSafe: true,
        qualifiedSignerChecked: false,
      }),
    });
    expect(typeof facts.details.resetCount).toBe("number");
  });

  it("RSA-2048 key certified by the ECC AK under the P-384 EK (SHA-384 Names)", () => {
    const facts = verifyTpmCertify(eccAkCertify, {
      signer: swtpmSigner("ecc384"),
      extraData: nonce,
      csrKey: pemKey("swtpm/keys/rsa.pub.pem"),
    });
    expect(facts.details).toMatchObject({ keyType: "rsa-2048", signatureScheme: "ecdsa" });
  });

  it("checks qualifiedSigner when the device's QN is known: QN(EK, AK) matches, another does not", async () => {
    const ek = unmarshalTpm2bPublic(fx("swtpm/ek/rsa2048.pub"));
    const qn = akQualifiedNameUnderEk(ek, fx("swtpm/ak/rsa2048.name"));
    expect(qn.equals(fx("swtpm/ak/rsa2048.qname"))).toBe(true);
    const x = { extraData: nonce, csrKey: pemKey("swtpm/keys/ecc.pub.pem") };
    const facts = verifyTpmCertify(rsaAkCertify, { ...x, signer: swtpmSigner("rsa2048", qn) });
    expect(facts.details.qualifiedSignerChecked).toBe(true);
    const other = simQualifiedName(fx("swtpm/ak/rsa2048.name"));
    await expectCode(
      () => verifyTpmCertify(rsaAkCertify, { ...x, signer: swtpmSigner("rsa2048", other) }),
      "attestation.signer_mismatch",
      "attestation.certifyInfo.qualifiedSigner",
    );
  });

  it("a signer other than the device's AK: another AK's nameAlg, or the same nameAlg and a wrong key", async () => {
    const x = { extraData: nonce, csrKey: pemKey("swtpm/keys/ecc.pub.pem") };
    await expectCode(
      () => verifyTpmCertify(rsaAkCertify, { ...x, signer: swtpmSigner("ecc384") }),
      "attestation.signer_mismatch",
    );
    await expectCode(
      () => verifyTpmCertify(rsaAkCertify, { ...x, signer: swtpmSigner("ecc256") }),
      "attestation.signature_invalid",
      "attestation.signature",
    );
  });

  it("through the format, the real attestation stops at the binding (its nonce is not SHA-256(nonce || SPKI))", async () => {
    const csrKey = pemKey("swtpm/keys/ecc.pub.pem");
    const att = {
      format: "tpm-certify",
      keyPublic: b64(rsaAkCertify.keyPublic),
      certifyInfo: b64(rsaAkCertify.certifyInfo),
      signature: b64(rsaAkCertify.signature),
    };
    const dev = device({ tpm2b: fx("swtpm/ak/rsa2048.pub"), name: fx("swtpm/ak/rsa2048.name") });
    const ctx = context(
      dev,
      { spki: csrKey.export({ type: "spki", format: "der" }), publicKey: csrKey },
      { nonce },
    );
    await expectCode(tpmCertifyFormat().verify(att, ctx), "attestation.nonce_mismatch");
  });

  it("tpm2_certify's hard-coded 00ff55aa qualifying data is refused", async () => {
    const e = {
      keyPublic: fx("swtpm/keys/ecc.pub"),
      certifyInfo: fx("swtpm/certify/ecc-key.tpm2_certify.attest"),
      signature: fx("swtpm/certify/ecc-key.tpm2_certify.sig"),
    };
    await expectCode(
      () =>
        verifyTpmCertify(e, {
          signer: swtpmSigner("rsa2048"),
          extraData: nonce,
          csrKey: pemKey("swtpm/keys/ecc.pub.pem"),
        }),
      "attestation.nonce_mismatch",
      "attestation.certifyInfo.extraData",
    );
  });

  it("a CertifyCreation (0x801A) or a quote (0x8018) is not a certify", async () => {
    const x = { signer: swtpmSigner("rsa2048"), extraData: nonce, csrKey: pemKey("swtpm/keys/ecc.pub.pem") };
    for (const [attest, sig] of [
      ["swtpm/certify/ecc-key.creation.attest", "swtpm/certify/ecc-key.creation.sig"],
      ["swtpm/quote/rsa2048.msg", "swtpm/quote/rsa2048.sig"],
    ] as const) {
      const e = { keyPublic: fx("swtpm/keys/ecc.pub"), certifyInfo: fx(attest), signature: fx(sig) };
      await expectCode(
        () => verifyTpmCertify(e, x),
        "attestation.type_invalid",
        "attestation.certifyInfo.type",
      );
    }
  });

  it("a real Windows Hello certify (Nuvoton NPCT75x) signed with SHA-1 is refused for its hash", async () => {
    const dir = "real/webauthn/real-winhello-nuvoton-npct75x-ecc-p256";
    const aik = new X509Certificate(fx(`${dir}/x5c-0.der`)).publicKey;
    const keyPublic = marshalTpm2bPublic(unmarshalTpmtPublic(fx(`${dir}/pubArea.bin`)));
    const signature = marshalSignature({
      sigAlg: TPM_ALG.RSASSA,
      hashAlg: TPM_ALG.SHA1,
      sig: fx(`${dir}/sig.bin`),
    });
    const signer = { key: aik, nameAlg: TPM_ALG.SHA256, name: Buffer.alloc(34), qualifiedName: null };
    const e = { keyPublic, certifyInfo: fx(`${dir}/certInfo.bin`), signature };
    await expectCode(
      () => verifyTpmCertify(e, { signer, extraData: Buffer.alloc(32), csrKey: aik }),
      "attestation.hash_not_allowed",
      "attestation.signature.hash",
    );
  });
});

describe("tpm-certify through the format, nonce-bound (software-signed TPMS_ATTEST)", () => {
  const format = tpmCertifyFormat();
  let eccAk: SimKey;
  let rsaAk: SimKey;
  let key: SimKey;
  let rsaKey: SimKey;
  beforeAll(() => {
    eccAk = simKey("p256", AK_ATTRS);
    rsaAk = simKey("rsa2048", AK_ATTRS);
    key = simKey("p256", KEY_ATTRS, { scheme: null });
    rsaKey = simKey("rsa2048", KEY_ATTRS);
  });
  const csr = (k: SimKey) => ({ spki: k.spki, publicKey: k.publicKey });
  const verify = (att: Record<string, unknown>, ak: SimKey, k: SimKey) =>
    format.verify(att, context(device(ak), csr(k)));

  it.each([
    ["P-256 AK, P-256 key", () => [eccAk, key] as const, "ecc-p256"],
    ["RSA-2048 AK, RSA-2048 key", () => [rsaAk, rsaKey] as const, "rsa-2048"],
  ])("%s: verifies and reports keyResidency tpm", async (_, pick, keyType) => {
    const [ak, k] = pick();
    const facts: EvidenceFacts = await verify(certifyAttestation(ak, k, binding(k.spki)), ak, k);
    expect(facts).toMatchObject({ format: "tpm-certify", keyResidency: "tpm" });
    expect(facts.details).toMatchObject({
      akName: ak.name.toString("hex"),
      certifiedName: k.name.toString("hex"),
      keyType,
      resetCount: 5,
      restartCount: 2,
    });
    for (const v of Object.values(facts.details)) expect(["string", "number", "boolean"]).toContain(typeof v);
  });

  it("a wrong magic", async () => {
    const att = certifyAttestation(eccAk, key, binding(key.spki), {
      edit: (a) => ({ ...a, magic: 0xff544348 }),
    });
    await expectCode(verify(att, eccAk, key), "attestation.magic_invalid", "attestation.certifyInfo.magic");
  });

  it("a wrong type (a quote, signed by the AK)", async () => {
    const att = certifyAttestation(eccAk, key, binding(key.spki));
    const quote = quoteAttest(eccAk, binding(key.spki), [], Buffer.alloc(32));
    const bytes = marshalAttest(quote);
    att.certifyInfo = b64(bytes);
    att.signature = b64(tpmSign(eccAk, bytes));
    await expectCode(verify(att, eccAk, key), "attestation.type_invalid");
  });

  it("trailing bytes after certifyInfo, even when signed", async () => {
    const att = certifyAttestation(eccAk, key, binding(key.spki), {
      bytes: (b) => Buffer.concat([b, Buffer.from([0])]),
    });
    const e = await expectCode(verify(att, eccAk, key), "attestation.malformed", "attestation.certifyInfo");
    expect(e.detail).toMatch(/trailing/);
  });

  it("extraData over another key, or another nonce", async () => {
    const other = simKey("p256", KEY_ATTRS);
    await expectCode(
      verify(certifyAttestation(eccAk, key, binding(other.spki)), eccAk, key),
      "attestation.nonce_mismatch",
      "attestation.certifyInfo.extraData",
    );
    await expectCode(
      verify(certifyAttestation(eccAk, key, binding(key.spki, Buffer.alloc(32, 9))), eccAk, key),
      "attestation.nonce_mismatch",
    );
  });

  it("a CSR key other than the certified key (binding over the CSR key)", async () => {
    const other = simKey("p256", KEY_ATTRS);
    const att = certifyAttestation(eccAk, key, binding(other.spki));
    await expectCode(
      format.verify(att, context(device(eccAk), csr(other))),
      "attestation.key_mismatch",
      "attestation.keyPublic",
    );
  });

  it("a keyPublic whose point is off the curve cannot equal the (valid) CSR key", async () => {
    const { pub } = key;
    if (pub.type !== TPM_ALG.ECC) throw new Error("ecc");
    const bad = simKey("p256", KEY_ATTRS, {
      scheme: null,
      unique: { x: pub.unique.x, y: Buffer.alloc(32, 3) },
    });
    const att = certifyAttestation(eccAk, bad, binding(key.spki));
    await expectCode(verify(att, eccAk, key), "attestation.key_mismatch", "attestation.keyPublic");
  });

  it("keyPublic that is not the certified key", async () => {
    const other = simKey("p256", KEY_ATTRS);
    const att = certifyAttestation(eccAk, key, binding(other.spki));
    att.keyPublic = b64(other.tpm2b);
    await expectCode(
      format.verify(att, context(device(eccAk), csr(other))),
      "attestation.name_mismatch",
      "attestation.certifyInfo.attested.certify.name",
    );
  });

  it.each([
    ["fixedTPM", KEY_ATTRS & ~TPMA_OBJECT.fixedTPM],
    ["sensitiveDataOrigin", KEY_ATTRS & ~TPMA_OBJECT.sensitiveDataOrigin],
    ["fixedParent", KEY_ATTRS & ~TPMA_OBJECT.fixedParent],
    ["sign", (KEY_ATTRS & ~TPMA_OBJECT.sign) | TPMA_OBJECT.decrypt],
    ["restricted", KEY_ATTRS | TPMA_OBJECT.restricted],
    ["decrypt", KEY_ATTRS | TPMA_OBJECT.decrypt],
  ])("a certified key with %s wrong", async (attr, attrs) => {
    const k = simKey("p256", attrs, { scheme: null });
    await expectCode(
      verify(certifyAttestation(eccAk, k, binding(k.spki)), eccAk, k),
      "attestation.key_attributes",
      `attestation.keyPublic.objectAttributes.${attr}`,
    );
  });

  it.each([
    [
      "RSA-1024",
      () => simKey("rsa2048", KEY_ATTRS, {}, generateKeyPairSync("rsa", { modulusLength: 1024 })),
      "rsaDetail.keyBits",
    ],
    [
      "RSA e=3",
      () =>
        simKey(
          "rsa2048",
          KEY_ATTRS,
          {},
          generateKeyPairSync("rsa", { modulusLength: 2048, publicExponent: 3 }),
        ),
      "rsaDetail.exponent",
    ],
    [
      "P-521",
      () => simKey("p256", KEY_ATTRS, {}, generateKeyPairSync("ec", { namedCurve: "secp521r1" })),
      "eccDetail.curveID",
    ],
  ])("a weak certified key: %s", async (_, make, attr) => {
    const k = make();
    await expectCode(
      verify(certifyAttestation(eccAk, k, binding(k.spki)), eccAk, k),
      "attestation.key_weak",
      `attestation.keyPublic.parameters.${attr}`,
    );
  });

  it("SHA-1 anywhere: the signature, the key's nameAlg, the key's scheme", async () => {
    await expectCode(
      verify(certifyAttestation(rsaAk, rsaKey, binding(rsaKey.spki), { hash: "sha1" }), rsaAk, rsaKey),
      "attestation.hash_not_allowed",
      "attestation.signature.hash",
    );
    const sha1Name = simKey("p256", KEY_ATTRS, { nameAlg: TPM_ALG.SHA1 });
    await expectCode(
      verify(certifyAttestation(eccAk, sha1Name, binding(sha1Name.spki)), eccAk, sha1Name),
      "attestation.hash_not_allowed",
      "attestation.keyPublic.nameAlg",
    );
    const sha1Scheme = simKey("p256", KEY_ATTRS, {
      scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA1 },
    });
    await expectCode(
      verify(certifyAttestation(eccAk, sha1Scheme, binding(sha1Scheme.spki)), eccAk, sha1Scheme),
      "attestation.hash_not_allowed",
      "attestation.keyPublic.parameters.eccDetail.scheme.details.hashAlg",
    );
  });

  it("a signer other than the device's AK", async () => {
    const otherAk = simKey("p256", AK_ATTRS);
    const att = certifyAttestation(eccAk, key, binding(key.spki), { signer: otherAk });
    await expectCode(verify(att, eccAk, key), "attestation.signature_invalid");
    // Same, but signed and named by the other AK, with the device's QN on record.
    const att2 = certifyAttestation(otherAk, key, binding(key.spki));
    const strict = tpmCertifyFormat({ qualifiedSigner: () => simQualifiedName(eccAk.name) });
    await expectCode(
      strict.verify(att2, context(device(eccAk), csr(key))),
      "attestation.signer_mismatch",
      "attestation.certifyInfo.qualifiedSigner",
    );
    await expect(
      strict.verify(certifyAttestation(eccAk, key, binding(key.spki)), context(device(eccAk), csr(key))),
    ).resolves.toMatchObject({ details: { qualifiedSignerChecked: true } });
  });

  it("a tampered signature or attest", async () => {
    const att = certifyAttestation(eccAk, key, binding(key.spki));
    const sig = Buffer.from(att.signature as string, "base64url");
    sig[sig.length - 1]! ^= 1;
    await expectCode(verify({ ...att, signature: b64(sig) }, eccAk, key), "attestation.signature_invalid");
    const edited = (a: TpmsAttest): TpmsAttest => ({ ...a, firmwareVersion: 1n });
    const signedOriginal = certifyAttestation(eccAk, key, binding(key.spki));
    const tampered = certifyAttestation(eccAk, key, binding(key.spki), { edit: edited });
    await expectCode(
      verify({ ...tampered, signature: signedOriginal.signature }, eccAk, key),
      "attestation.signature_invalid",
    );
  });

  it("a device without an activated AK, or whose stored Name is not its AK's", async () => {
    const att = certifyAttestation(eccAk, key, binding(key.spki));
    await expectCode(format.verify(att, context(device(null), csr(key))), "device.not_activated");
    const bad = { ...device(eccAk), akName: rsaAk.name };
    await expectCode(format.verify(att, context(bad, csr(key))), "device.ak_invalid", "device.akName");
  });

  it("malformed members", async () => {
    const good = certifyAttestation(eccAk, key, binding(key.spki));
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ ...good, extra: 1 }, "attestation.extra"],
      [{ ...good, signature: undefined }, "attestation.signature"],
      [{ ...good, signature: 42 }, "attestation.signature"],
      [{ ...good, keyPublic: `${good.keyPublic as string}=` }, "attestation.keyPublic"],
      [{ ...good, keyPublic: (good.keyPublic as string).replace(/.$/, "+") }, "attestation.keyPublic"],
      [{ ...good, keyPublic: b64(key.tpm2b.subarray(0, 20)) }, "attestation.keyPublic"],
      [{ ...good, certifyInfo: b64(Buffer.from([0xff, 0x54, 0x43])) }, "attestation.certifyInfo"],
      [{ ...good, signature: b64(Buffer.from([0, 0x14])) }, "attestation.signature"],
      [{ ...good, certifyInfo: "A".repeat(5000) }, "attestation.certifyInfo"],
    ];
    const { signature: _s, ...withoutSig } = good;
    cases[1] = [withoutSig, "attestation.signature"];
    for (const [att, field] of cases) {
      await expectCode(verify(att, eccAk, key), "attestation.malformed", field);
    }
  });

  it("the magic is checked on the 6-byte header, before the strict parse", async () => {
    const bytes = Buffer.alloc(6);
    bytes.writeUInt32BE((TPM_GENERATED_VALUE ^ 1) >>> 0);
    bytes.writeUInt16BE(TPM_ST.ATTEST_CERTIFY, 4);
    const att = { ...certifyAttestation(eccAk, key, binding(key.spki)), certifyInfo: b64(bytes) };
    await expectCode(verify(att, eccAk, key), "attestation.magic_invalid");
  });

  it("uses the nonce of the context", async () => {
    const att = certifyAttestation(eccAk, key, binding(key.spki, NONCE));
    await expect(
      format.verify(att, context(device(eccAk), csr(key), { nonce: NONCE })),
    ).resolves.toBeTruthy();
    await expectCode(
      format.verify(att, context(device(eccAk), csr(key), { nonce: Buffer.alloc(32) })),
      "attestation.nonce_mismatch",
    );
  });
});
