import { createPublicKey, type KeyObject, webcrypto, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import {
  keyParamsFromKeyObject,
  marshalTpm2bPublic,
  TPM_ALG,
  type TpmtPublic,
  unmarshalTpm2bPublic,
} from "../../../src/tpm/index.js";
import {
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  Extension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  X509CertificateGenerator,
} from "../../../src/x509/peculiar.js";

const EK = fileURLToPath(new URL("../../fixtures/ek/", import.meta.url));
const TPM = fileURLToPath(new URL("../../fixtures/tpm/", import.meta.url));

/** Bytes of a file under test/fixtures/ek/. */
export function ekFx(path: string): Buffer {
  return readFileSync(EK + path);
}

/** Bytes of a file under test/fixtures/tpm/. */
export function tpmFx(path: string): Buffer {
  return readFileSync(TPM + path);
}

export const TRUST_DIR = fileURLToPath(new URL("../../../ca-config/trust/tpm/", import.meta.url));

/** 2027-01-01: inside the validity of every real and swtpm EK certificate used here. */
export const NOW = Date.UTC(2027, 0, 1);

/**
 * The TPM2B_PUBLIC a TPM would present for the key of an EK certificate: the swtpm's TCG
 * template (L-1 RSA-2048 or L-2 P-256, the templates real TPMs use) around that key.
 */
export function ekPublicForKey(key: KeyObject): Buffer {
  const params = keyParamsFromKeyObject(key);
  const t = params.type === TPM_ALG.RSA ? "rsa2048" : "ecc256";
  const template = unmarshalTpm2bPublic(tpmFx(`swtpm/ek/${t}.pub`));
  return marshalTpm2bPublic({ ...template, ...params } as TpmtPublic);
}

/** The EK public area matching a certificate's key (node parses padded DER too). */
export function ekPublicForCert(der: Buffer): Buffer {
  return ekPublicForKey(new X509Certificate(der).publicKey);
}

// A small synthetic EK PKI for the path rules real certificates cannot show (an expired
// CA, SHA-1, a missing CA flag, path length, unknown critical extensions).

const RSA = {
  name: "RSASSA-PKCS1-v1_5",
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
  hash: "SHA-256",
};

export interface TestCa {
  name: string;
  der: Buffer;
  keys: webcrypto.CryptoKeyPair;
}

async function rsaKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(RSA, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
}

export interface CaOptions {
  notBefore?: number;
  notAfter?: number;
  ca?: boolean;
  pathLen?: number;
  hash?: "SHA-1" | "SHA-256";
  extraCritical?: boolean;
}

let serial = 1;

/** WebCrypto binds the hash to an RSA key: re-import the issuer key for SHA-1 signatures. */
async function signingKey(issuer: TestCa, hash: "SHA-1" | "SHA-256"): Promise<webcrypto.CryptoKey> {
  if (hash === "SHA-256") return issuer.keys.privateKey;
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", issuer.keys.privateKey);
  return webcrypto.subtle.importKey("pkcs8", pkcs8, { name: RSA.name, hash }, false, ["sign"]);
}

export async function makeCa(name: string, issuer: TestCa | null, o: CaOptions = {}): Promise<TestCa> {
  const keys = await rsaKeys();
  const cert = await X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(2, "0"),
    subject: `CN=${name}, O=Mayfly Test TPM Vendor, C=DE`,
    issuer: issuer ? issuer.name : `CN=${name}, O=Mayfly Test TPM Vendor, C=DE`,
    notBefore: new Date(o.notBefore ?? Date.UTC(2020, 0, 1)),
    notAfter: new Date(o.notAfter ?? Date.UTC(2040, 0, 1)),
    publicKey: keys.publicKey,
    signingKey: await signingKey(issuer ?? { name: "", der: Buffer.alloc(0), keys }, o.hash ?? "SHA-256"),
    signingAlgorithm: { name: "RSASSA-PKCS1-v1_5", hash: o.hash ?? "SHA-256" },
    extensions: [
      new BasicConstraintsExtension(o.ca ?? true, o.pathLen, true),
      new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
      ...(o.extraCritical ? [new Extension("1.3.6.1.4.1.99999.1", true, new Uint8Array([5, 0]))] : []),
    ],
  });
  return { name: `CN=${name}, O=Mayfly Test TPM Vendor, C=DE`, der: Buffer.from(cert.rawData), keys };
}

export interface LeafOptions {
  notBefore?: number;
  notAfter?: number;
  hash?: "SHA-1" | "SHA-256";
  eku?: string[];
  extraCritical?: boolean;
}

/** An EK certificate (empty subject, critical TCG SAN) for a fresh RSA key; returns both. */
export async function makeEkCert(
  issuer: TestCa,
  o: LeafOptions = {},
): Promise<{ der: Buffer; ekPublic: Buffer }> {
  const keys = await rsaKeys();
  const cert = await X509CertificateGenerator.create({
    serialNumber: (serial++).toString(16).padStart(2, "0"),
    subject: "",
    issuer: issuer.name,
    notBefore: new Date(o.notBefore ?? Date.UTC(2024, 0, 1)),
    notAfter: new Date(o.notAfter ?? Date.UTC(9999, 11, 31, 23, 59, 59)),
    publicKey: keys.publicKey,
    signingKey: await signingKey(issuer, o.hash ?? "SHA-256"),
    signingAlgorithm: { name: "RSASSA-PKCS1-v1_5", hash: o.hash ?? "SHA-256" },
    extensions: [
      new SubjectAlternativeNameExtension(
        [{ type: "dn", value: "2.23.133.2.1=id:4D594659, 2.23.133.2.2=TestTPM, 2.23.133.2.3=id:00010002" }],
        true,
      ),
      new BasicConstraintsExtension(false, undefined, true),
      new KeyUsagesExtension(KeyUsageFlags.keyEncipherment, true),
      new ExtendedKeyUsageExtension(o.eku ?? ["2.23.133.8.1"]),
      ...(o.extraCritical ? [new Extension("1.3.6.1.4.1.99999.2", true, new Uint8Array([5, 0]))] : []),
    ],
  });
  const spki = Buffer.from(await webcrypto.subtle.exportKey("spki", keys.publicKey));
  return {
    der: Buffer.from(cert.rawData),
    ekPublic: ekPublicForKey(createPublicKey({ key: spki, format: "der", type: "spki" })),
  };
}
