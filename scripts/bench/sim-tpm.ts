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
  createPrivateKey,
  generateKeyPairSync,
  type JsonWebKey,
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
  marshalAttest,
  marshalSignature,
  marshalTpm2bPublic,
  objectName,
  qualifiedName,
  TPM_ALG,
  TPM_ECC_CURVE,
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
  /** The private scalar, for the ECDH of ActivateCredential. */
  d: Buffer;
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

// SPKI DER of a P-256 key up to the uncompressed point's 04: the SPKI is this prefix and
// x || y, which the TPM returns in TPMT_PUBLIC.unique.
const P256_SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d03010703420004", "hex");

interface P256 {
  privateKey: KeyObject;
  x: Buffer;
  y: Buffer;
  /** SubjectPublicKeyInfo DER. */
  spki: Buffer;
}

/**
 * A fresh P-256 key, its point read by the key generation job itself (publicKeyEncoding jwk).
 * Not KeyObject.export() afterwards: that costs ~0.07 ms more a fresh key on OpenSSL 3, and
 * on Node 20.20 the JWK export deadlocks now and then (ExportJWKEcKey allocates under the
 * key's mutex; a GC there can run ~KeyGenJob of that same key, which takes the mutex: a loop
 * hung after a few thousand keys). Nor ECDH + JWK import: ~0.06 ms slower again.
 */
// node supports format "jwk" in the keygen encodings; @types/node does not declare it.
const genEc = generateKeyPairSync as unknown as <P, Q>(
  type: "ec",
  options: {
    namedCurve: string;
    publicKeyEncoding: { format: "jwk" };
    privateKeyEncoding?: { format: "jwk" };
  },
) => { privateKey: P; publicKey: Q };

function p256(): P256 {
  const { privateKey, publicKey } = genEc<KeyObject, JsonWebKey>("ec", {
    namedCurve: "prime256v1",
    publicKeyEncoding: { format: "jwk" },
  });
  const x = Buffer.from(publicKey.x!, "base64url");
  const y = Buffer.from(publicKey.y!, "base64url");
  return { privateKey, x, y, spki: Buffer.concat([P256_SPKI_PREFIX, x, y]) };
}

const PARENT_QN = qualifiedName(
  hierarchyQualifiedName(TPM_RH.OWNER),
  Buffer.concat([Buffer.from([0, 0x0b]), Buffer.alloc(32, 7)]),
);

function eccParams(k: {
  x: Buffer;
  y: Buffer;
}): Pick<TpmtPublic & { type: typeof TPM_ALG.ECC }, "type" | "curveId" | "unique"> {
  return { type: TPM_ALG.ECC, curveId: TPM_ECC_CURVE.NIST_P256, unique: { x: k.x, y: k.y } };
}

function signingPublic(k: { x: Buffer; y: Buffer }, attrs: number): TpmtPublic {
  return {
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: attrs,
    authPolicy: Buffer.alloc(0),
    symmetric: null,
    scheme: { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 },
    kdf: null,
    ...eccParams(k),
  } as TpmtPublic;
}

/** A P-256 EK in the TCG L-2 template's shape. */
export function simEk(): SimEk {
  // The EK's scalar too, for the ECDH of ActivateCredential (setup only).
  const { privateKey: jwk } = genEc<JsonWebKey, JsonWebKey>("ec", {
    namedCurve: "prime256v1",
    publicKeyEncoding: { format: "jwk" },
    privateKeyEncoding: { format: "jwk" },
  });
  const k = {
    privateKey: createPrivateKey({ key: jwk, format: "jwk" }),
    x: Buffer.from(jwk.x!, "base64url"),
    y: Buffer.from(jwk.y!, "base64url"),
  };
  const pub = { ...ekTemplate("ecc256"), ...eccParams(k) } as TpmtPublic;
  return {
    pub,
    privateKey: k.privateKey,
    d: Buffer.from(jwk.d!, "base64url"),
    tpm2b: marshalTpm2bPublic(pub),
    hash: createHash("sha256")
      .update(Buffer.concat([P256_SPKI_PREFIX, k.x, k.y]))
      .digest(),
  };
}

export function simAk(ek?: SimEk): SimAk {
  const k = p256();
  const pub = signingPublic(k, AK_ATTRS);
  const name = objectName(pub);
  return {
    pub,
    privateKey: k.privateKey,
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
  ecdh.setPrivateKey(ek.d);
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

/** A fresh P-256 key pair and its SubjectPublicKeyInfo DER. */
export function p256Key(): { privateKey: KeyObject; spki: Buffer } {
  const { privateKey, spki } = p256();
  return { privateKey, spki };
}

/** TPM2_Create of an unrestricted P-256 signing key (what the agent does per issuance). */
export function createKey(): CertifiedKey {
  const k = p256();
  const pub = signingPublic(k, KEY_ATTRS);
  return { privateKey: k.privateKey, spki: k.spki, tpm2b: marshalTpm2bPublic(pub), name: objectName(pub) };
}

let clock = 1_000_000n;

/** The tpm-certify attestation of a certificate request (DESIGN.md's wire form), base64url. */
export function certifyAttestation(
  key: CertifiedKey,
  evidence: { attest: Buffer; signature: Buffer },
): { format: "tpm-certify"; keyPublic: string; certifyInfo: string; signature: string } {
  return {
    format: "tpm-certify",
    keyPublic: key.tpm2b.toString("base64url"),
    certifyInfo: evidence.attest.toString("base64url"),
    signature: evidence.signature.toString("base64url"),
  };
}

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
