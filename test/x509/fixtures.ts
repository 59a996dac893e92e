import { generateKeyPairSync, webcrypto } from "node:crypto";
import type { KeySpec } from "../../src/keys/keystore.js";
import type { LeafInput } from "../../src/x509/index.js";
import type { ReferenceIssuer } from "../../src/x509/leaf-reference.js";
import {
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from "../../src/x509/peculiar.js";
import { type MemorySigner, memorySignerFromKey } from "../helpers/memory-signer.js";

// Shared x509 test material. Keys are generated once per test file and reused: key
// generation would otherwise dominate the property tests.

/** An issuing CA as both sides need it: a WebCrypto key for @peculiar/x509, a CaSigner twin for Mayfly. */
export interface TestIssuer {
  name: string;
  certificateDer: Buffer;
  reference: ReferenceIssuer;
  signer: MemorySigner;
}

const WEB_ALGS = {
  "P-256": { gen: { name: "ECDSA", namedCurve: "P-256" }, sign: { name: "ECDSA", hash: "SHA-256" } },
  "P-384": { gen: { name: "ECDSA", namedCurve: "P-384" }, sign: { name: "ECDSA", hash: "SHA-384" } },
  "RSA-2048": {
    gen: {
      name: "RSASSA-PKCS1-v1_5",
      modulusLength: 2048,
      publicExponent: new Uint8Array([1, 0, 1]),
      hash: "SHA-256",
    },
    sign: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" },
  },
} as const;

const SPECS: Record<keyof typeof WEB_ALGS, KeySpec> = {
  "P-256": { kind: "ec", curve: "P-256" },
  "P-384": { kind: "ec", curve: "P-384" },
  "RSA-2048": { kind: "rsa", bits: 2048 },
};

/** A self-signed issuer with a non-trivial subject (PrintableString and UTF8String values). */
export async function makeIssuer(kind: keyof typeof WEB_ALGS): Promise<TestIssuer> {
  const a = WEB_ALGS[kind];
  const keys = (await webcrypto.subtle.generateKey(a.gen, true, [
    "sign",
    "verify",
  ])) as webcrypto.CryptoKeyPair;
  const cert = await X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: "5a5a",
      name: `CN=Mayfly Test Issuer ${kind}, O=Mayfly Tëst, C=DE`,
      notBefore: new Date(Date.UTC(1950, 0, 1)),
      notAfter: new Date(Date.UTC(9999, 11, 31, 23, 59, 59)),
      keys,
      signingAlgorithm: a.sign,
      extensions: [await SubjectKeyIdentifierExtension.create(keys.publicKey)],
    },
    webcrypto as unknown as webcrypto.Crypto,
  );
  const pkcs8 = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", keys.privateKey));
  return {
    name: kind,
    certificateDer: Buffer.from(cert.rawData),
    reference: {
      certificate: new X509Certificate(cert.rawData),
      signingKey: keys.privateKey,
      signingAlgorithm: a.sign,
    },
    signer: memorySignerFromKey(pkcs8, SPECS[kind], `issuer-${kind}`),
  };
}

export interface AgentKeyFixture {
  kind: string;
  spki: Buffer;
}

/** A small pool of agent keys of every allowed type. */
export function agentKeyPool(): AgentKeyFixture[] {
  const pool: AgentKeyFixture[] = [];
  const spki = (k: { publicKey: import("node:crypto").KeyObject }) =>
    k.publicKey.export({ type: "spki", format: "der" });
  for (let i = 0; i < 4; i++)
    pool.push({ kind: "P-256", spki: spki(generateKeyPairSync("ec", { namedCurve: "P-256" })) });
  for (let i = 0; i < 3; i++)
    pool.push({ kind: "P-384", spki: spki(generateKeyPairSync("ec", { namedCurve: "P-384" })) });
  for (let i = 0; i < 2; i++)
    pool.push({ kind: "RSA-2048", spki: spki(generateKeyPairSync("rsa", { modulusLength: 2048 })) });
  return pool;
}

export function sampleLeaf(spki: Buffer, over: Partial<LeafInput> = {}): LeafInput {
  return {
    serial: Buffer.from("4f0123456789abcdef0123456789abcd", "hex"),
    notBefore: Date.UTC(2030, 5, 1, 12, 0, 0, 250),
    notAfter: Date.UTC(2030, 5, 1, 12, 5, 0, 750),
    spki,
    spiffeId: "spiffe://mayfly.internal/agent/ag_7f3a",
    assurance: {
      ownerId: "owner-ada",
      deviceId: "dev-42",
      agentId: "ag_7f3a",
      attestationFormat: "tpm-certify",
      keyResidency: "tpm",
    },
    ...over,
  };
}

export function pem(der: Buffer, label = "CERTIFICATE"): string {
  const b64 = der
    .toString("base64")
    .match(/.{1,64}/g)!
    .join("\n");
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}
