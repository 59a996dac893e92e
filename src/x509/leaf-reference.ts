import type { webcrypto } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";
import type { LeafInput } from "./leaf-input.js";
import { MayflyAssuranceAsn } from "./mayfly-extension-schema.js";
import { OID_MAYFLY_ASSURANCE } from "./oids.js";
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  Extension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  type X509Certificate,
  X509CertificateGenerator,
} from "./peculiar.js";

// The same leaf as leaf-encoder.ts, built the slow, general way with @peculiar/x509
// and @peculiar/asn1-schema. It exists to be compared against: the differential
// property test and scripts/bench-encoder.ts. It shares no encoding code with the
// fast path (only the input type and the OID constant).

export interface ReferenceIssuer {
  certificate: X509Certificate;
  signingKey: webcrypto.CryptoKey;
  signingAlgorithm: webcrypto.Algorithm & { hash: string };
  /** Defaults to the global WebCrypto. */
  crypto?: webcrypto.Crypto;
  /** OID of the Mayfly assurance extension; defaults to OID_MAYFLY_ASSURANCE. */
  assuranceOid?: string;
}

export async function buildReferenceLeaf(issuer: ReferenceIssuer, input: LeafInput): Promise<Buffer> {
  const c = issuer.crypto ?? globalThis.crypto;
  const issuerSki = issuer.certificate.getExtension(SubjectKeyIdentifierExtension);
  if (!issuerSki) throw new Error("reference issuer has no SKI");
  const assurance = new MayflyAssuranceAsn();
  assurance.ownerId = input.assurance.ownerId;
  assurance.deviceId = input.assurance.deviceId;
  assurance.agentId = input.assurance.agentId;
  assurance.attestationFormat = input.assurance.attestationFormat;
  assurance.keyResidency = input.assurance.keyResidency === "tpm" ? 0 : 1;
  const cert = await X509CertificateGenerator.create(
    {
      serialNumber: input.serial.toString("hex"),
      issuer: issuer.certificate.subjectName,
      // No subject: the generator then writes the empty Name, SEQUENCE {}.
      // Date objects are what the library takes; these are conversions, not clock reads.
      notBefore: new Date(input.notBefore),
      notAfter: new Date(input.notAfter),
      publicKey: input.spki,
      signingKey: issuer.signingKey,
      signingAlgorithm: issuer.signingAlgorithm,
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
        new ExtendedKeyUsageExtension([ExtendedKeyUsage.clientAuth, ExtendedKeyUsage.serverAuth], false),
        new SubjectAlternativeNameExtension([{ type: "url", value: input.spiffeId }], true),
        new AuthorityKeyIdentifierExtension(issuerSki.keyId, false),
        await SubjectKeyIdentifierExtension.create(input.spki, false, c),
        new Extension(issuer.assuranceOid ?? OID_MAYFLY_ASSURANCE, false, AsnConvert.serialize(assurance)),
      ],
    },
    c,
  );
  return Buffer.from(cert.rawData);
}

/** The TBSCertificate bytes of a certificate, as @peculiar/x509 reads them. */
export function tbsOf(der: Buffer): Buffer {
  const raw = AsnConvert.parse(der, Certificate).tbsCertificateRaw;
  if (!raw) throw new Error("no raw TBSCertificate");
  return Buffer.from(raw);
}

/** The signatureValue BIT STRING content of a certificate. */
export function signatureOf(der: Buffer): Buffer {
  return Buffer.from(AsnConvert.parse(der, Certificate).signatureValue);
}
