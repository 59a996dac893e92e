// LOAD ONLY: a software "TPM" for the benchmark, so thousands of devices can be driven
// from one machine. The EK and AK are software P-256 keys wrapped in well-formed TPM
// structures; they activate through the real HTTP API (registered EK hash, MakeCredential
// on the CA, ActivateCredential here), and each issuance makes a fresh key and a
// TPM2_Certify-shaped attestation signed by the AK. Nothing in src/ or test/ uses this
// file: correctness tests use swtpm or test/evidence/helpers/tpm-sim.ts.
import {
  createDecipheriv,
  createECDH,
  createHash,
  createHmac,
  generateKeyPairSync,
  type KeyObject,
  sign,
  timingSafeEqual,
} from "node:crypto";
import { akQualifiedNameUnderEk } from "../../src/devices/ak-policy.js";
import { ekTemplate } from "../../src/tpm/client/index.js";
import {
  eccCurveInfo,
  hashAlgInfo,
  hierarchyQualifiedName,
  kdfa,
  kdfe,
  keyParamsFromKeyObject,
  marshalAttest,
  marshalSignature,
  marshalTpm2bPublic,
  objectName,
  qualifiedName,
  TPM_ALG,
  TPM_GENERATED_VALUE,
  TPM_RH,
  TPM_ST,
  TPMA_OBJECT,
  TpmReader,
  type TpmtPublic,
} from "../../src/tpm/index.js";

const A = TPMA_OBJECT;
/** tpm2_createak: fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign. */
const AK_ATTRS = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.sign;
/** A TPM2_Create signing key: fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign. */
const KEY_ATTRS = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.sign;

export interface SimEk {
  pub: TpmtPublic;
  privateKey: KeyObject;
  tpm2b: Buffer;
  /** SHA-256 of the EK's SubjectPublicKeyInfo DER, as the CA registers it. */
  hash: Buffer;
}

export interface SimAk {
  pub: TpmtPublic;
  privateKey: KeyObject;
  tpm2b: Buffer;
  name: Buffer;
  /** QN of the AK: under its EK (as agents create it, what the CA records), else a notional owner-hierarchy parent. */
  qualifiedName: Buffer;
}

function p256(): { privateKey: KeyObject; publicKey: KeyObject } {
  return generateKeyPairSync("ec", { namedCurve: "prime256v1" });
}

const PARENT_QN = qualifiedName(
  hierarchyQualifiedName(TPM_RH.OWNER),
  Buffer.concat([Buffer.from([0, 0x0b]), Buffer.alloc(32, 7)]),
);

function signingPublic(publicKey: KeyObject, attrs: number): TpmtPublic {
  return {
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: attrs,
    authPolicy: Buffer.alloc(0),
    symmetric: null,
    scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
    kdf: null,
    ...keyParamsFromKeyObject(publicKey),
  } as TpmtPublic;
}

/** A P-256 EK in the TCG L-2 template's shape. */
export function simEk(): SimEk {
  const { privateKey, publicKey } = p256();
  const pub = { ...ekTemplate("ecc256"), ...keyParamsFromKeyObject(publicKey) } as TpmtPublic;
  const spki = publicKey.export({ type: "spki", format: "der" });
  return {
    pub,
    privateKey,
    tpm2b: marshalTpm2bPublic(pub),
    hash: createHash("sha256").update(spki).digest(),
  };
}

export function simAk(ek?: SimEk): SimAk {
  const { privateKey, publicKey } = p256();
  const pub = signingPublic(publicKey, AK_ATTRS);
  const name = objectName(pub);
  return {
    pub,
    privateKey,
    tpm2b: marshalTpm2bPublic(pub),
    name,
    qualifiedName: ek ? akQualifiedNameUnderEk(ek.pub, name) : qualifiedName(PARENT_QN, name),
  };
}

/** TPM2_ActivateCredential for a P-256 EK (TPM 2.0 Part 1 §24, Part 3 §12.5). */
export function activateCredential(
  ek: SimEk,
  akName: Buffer,
  credentialBlob: Buffer,
  encryptedSecret: Buffer,
): Buffer {
  const h = hashAlgInfo(ek.pub.nameAlg, "nameAlg");
  if (ek.pub.type !== TPM_ALG.ECC) throw new Error("the bench's EKs are P-256");
  const outer = new TpmReader(encryptedSecret);
  const point = new TpmReader(outer.tpm2b("TPM2B_ENCRYPTED_SECRET", 0xffff));
  outer.expectEnd("TPM2B_ENCRYPTED_SECRET");
  const c = eccCurveInfo(ek.pub.curveId);
  const qx = point.tpm2b("x", c.bytes);
  const qy = point.tpm2b("y", c.bytes);
  point.expectEnd("TPMS_ECC_POINT");
  const ecdh = createECDH(c.node);
  ecdh.setPrivateKey(Buffer.from(ek.privateKey.export({ format: "jwk" }).d ?? "", "base64url"));
  const z = ecdh.computeSecret(Buffer.concat([Buffer.from([4]), qx, qy]));
  const seed = kdfe(ek.pub.nameAlg, z, "IDENTITY", qx, ek.pub.unique.x, h.size * 8);
  const blob = new TpmReader(credentialBlob);
  const body = new TpmReader(blob.tpm2b("TPM2B_ID_OBJECT", 0xffff));
  blob.expectEnd("TPM2B_ID_OBJECT");
  const integrity = body.tpm2b("integrityHMAC", 64);
  const encIdentity = body.bytes(body.remaining, "encIdentity");
  const hmacKey = kdfa(ek.pub.nameAlg, seed, "INTEGRITY", Buffer.alloc(0), Buffer.alloc(0), h.size * 8);
  const expected = createHmac(h.node, hmacKey).update(encIdentity).update(akName).digest();
  if (integrity.length !== expected.length || !timingSafeEqual(integrity, expected)) {
    throw new Error("ActivateCredential: integrity check failed");
  }
  const keyBits = ek.pub.symmetric?.keyBits ?? 0;
  const symKey = kdfa(ek.pub.nameAlg, seed, "STORAGE", akName, Buffer.alloc(0), keyBits);
  const d = createDecipheriv(`aes-${keyBits}-cfb`, symKey, Buffer.alloc(16));
  const plain = new TpmReader(Buffer.concat([d.update(encIdentity), d.final()]));
  const credential = plain.tpm2b("credential", 64);
  plain.expectEnd("credential");
  return credential;
}

export interface CertifiedKey {
  privateKey: KeyObject;
  /** SubjectPublicKeyInfo DER of the new key. */
  spki: Buffer;
  /** TPM2B_PUBLIC of the new key. */
  tpm2b: Buffer;
  name: Buffer;
}

// SPKI DER of a P-256 key up to the uncompressed point's 04: the SPKI is this prefix and
// x || y, which the TPM returns in TPMT_PUBLIC.unique (node:crypto's own SPKI export costs
// ~0.12 ms a key on OpenSSL 3; the load tool should not burn the CPU it shares).
const P256_SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d03010703420004", "hex");

/** A fresh P-256 key pair and its SubjectPublicKeyInfo DER. */
export function p256Key(): { privateKey: KeyObject; publicKey: KeyObject; spki: Buffer } {
  const { privateKey, publicKey } = p256();
  const jwk = publicKey.export({ format: "jwk" });
  const xy = [jwk.x!, jwk.y!].map((c) => Buffer.from(c, "base64url"));
  return { privateKey, publicKey, spki: Buffer.concat([P256_SPKI_PREFIX, ...xy]) };
}

/** TPM2_Create of an unrestricted P-256 signing key (what the agent does per issuance). */
export function createKey(): CertifiedKey {
  const { privateKey, publicKey, spki } = p256Key();
  const pub = signingPublic(publicKey, KEY_ATTRS);
  return { privateKey, spki, tpm2b: marshalTpm2bPublic(pub), name: objectName(pub) };
}

let clock = 1_000_000n;

/** TPM2_Certify(key, AK) with extraData: the bare TPMS_ATTEST and its TPMT_SIGNATURE. */
export function certify(
  ak: SimAk,
  key: CertifiedKey,
  extraData: Buffer,
): { attest: Buffer; signature: Buffer } {
  clock += 1n;
  const attest = marshalAttest({
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST.ATTEST_CERTIFY,
    qualifiedSigner: ak.qualifiedName,
    extraData,
    clockInfo: { clock, resetCount: 1, restartCount: 0, safe: true },
    firmwareVersion: 0x2019102300163636n,
    attested: { name: key.name, qualifiedName: qualifiedName(PARENT_QN, key.name) },
  });
  const raw = sign("sha256", attest, { key: ak.privateKey, dsaEncoding: "ieee-p1363" });
  const signature = marshalSignature({
    sigAlg: TPM_ALG.ECDSA,
    hashAlg: TPM_ALG.SHA256,
    signatureR: raw.subarray(0, 32),
    signatureS: raw.subarray(32),
  });
  return { attest, signature };
}
