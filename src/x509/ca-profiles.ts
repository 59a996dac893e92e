import { createPublicKey } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import type { CaSigner } from "../keys/keystore.js";
import { parseCertificate, verifyIssuedSignature } from "./certificate-signature.js";
import { isEncodableTime } from "./der.js";
import { readIssuerCertificate } from "./issuer-certificate.js";
import { keyIdentifier } from "./key-identifier.js";
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsage,
  ExtendedKeyUsageExtension,
  type Extension,
  type JsonName,
  KeyUsageFlags,
  KeyUsagesExtension,
  Name,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from "./peculiar.js";
import { isMayflySerial } from "./serial.js";
import { signerCrypto } from "./signer-crypto.js";

// Root, intermediate and the CA's own TLS server certificate. Rare and not on a hot
// path, so they are built with @peculiar/x509, signed through a CaSigner (which may
// be an HSM) via the signerCrypto adapter, and verified after signing.
//
// Root: self-signed, CA:TRUE critical, keyCertSign|cRLSign critical, SKI, and AKI
// equal to the SKI. RFC 5280 §4.2.1.1 lets a self-signed root omit the AKI; we keep it
// because the CA/Browser Forum baseline profile recommends it for roots and it costs
// nothing, and because path builders that match AKI to SKI then treat the root like
// any other certificate.

/** A CA distinguished name: an RFC 4514-style string, or the config's two fields. */
export type CaName = string | { commonName: string; organization?: string };

export interface BuiltCertificate {
  der: Buffer;
  /** SubjectKeyIdentifier (RFC 5280 method 1). */
  ski: Buffer;
  serial: Buffer;
  /** As written in the certificate: whole seconds, epoch ms. */
  notBefore: number;
  notAfter: number;
}

interface Common {
  serial: Buffer;
  notBefore: number;
  notAfter: number;
}

export interface RootParams extends Common {
  signer: CaSigner;
  subject: CaName;
}

export interface IssuedParams extends Common {
  issuerCertificate: Buffer;
  issuerSigner: CaSigner;
  /** SubjectPublicKeyInfo DER of the certified key. */
  subjectPublicKey: Buffer;
}

export interface IntermediateParams extends IssuedParams {
  subject: CaName;
}

export interface ServerCertificateParams extends IssuedParams {
  dnsNames: string[];
  ipAddresses: string[];
  /** Optional; when absent the subject is empty and the SAN critical (RFC 5280 §4.2.1.6). */
  subject?: CaName;
}

const CA_KEY_USAGE = KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign;

export async function buildRoot(p: RootParams): Promise<BuiltCertificate> {
  checkCommon(p);
  const ski = keyIdentifier(p.signer.spki);
  const name = toName(p.subject);
  return sign(p, p.signer, p.signer.spki, name, name, ski, [
    new BasicConstraintsExtension(true, undefined, true),
    new KeyUsagesExtension(CA_KEY_USAGE, true),
  ]);
}

export async function buildIntermediate(p: IntermediateParams): Promise<BuiltCertificate> {
  const issuer = checkIssued(p);
  return sign(p, p.issuerSigner, p.subjectPublicKey, issuer.name, toName(p.subject), issuer.ski, [
    // pathLenConstraint 0: the intermediate signs leaves only, never another CA.
    new BasicConstraintsExtension(true, 0, true),
    new KeyUsagesExtension(CA_KEY_USAGE, true),
  ]);
}

export async function buildServerCertificate(p: ServerCertificateParams): Promise<BuiltCertificate> {
  const issuer = checkIssued(p);
  const names = [
    ...p.dnsNames.map((value) => ({ type: "dns" as const, value })),
    ...p.ipAddresses.map((value) => ({ type: "ip" as const, value })),
  ];
  if (names.length === 0) {
    throw new MayflyError(
      "certificate.profile_violation",
      "a server certificate needs a DNS name or IP address",
      {
        field: "dnsNames",
      },
    );
  }
  return sign(
    p,
    p.issuerSigner,
    p.subjectPublicKey,
    issuer.name,
    p.subject ? toName(p.subject) : undefined,
    issuer.ski,
    [
      new BasicConstraintsExtension(false, undefined, true),
      new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
      new ExtendedKeyUsageExtension([ExtendedKeyUsage.serverAuth], false),
      new SubjectAlternativeNameExtension(names, !p.subject),
    ],
  );
}

async function sign(
  p: Common,
  signer: CaSigner,
  spki: Buffer,
  issuer: string | JsonName | Name,
  subject: string | JsonName | undefined,
  authorityKeyId: Buffer,
  extensions: Extension[],
): Promise<BuiltCertificate> {
  const sc = await signerCrypto(signer);
  const ski = keyIdentifier(spki);
  const cert = await X509CertificateGenerator.create(
    {
      serialNumber: p.serial.toString("hex"),
      issuer,
      subject,
      // Conversions of the given instants for the library, not clock reads.
      notBefore: new Date(p.notBefore),
      notAfter: new Date(p.notAfter),
      publicKey: spki,
      signingKey: sc.signingKey,
      signingAlgorithm: sc.signingAlgorithm,
      extensions: [
        ...extensions,
        new SubjectKeyIdentifierExtension(ski.toString("hex"), false),
        new AuthorityKeyIdentifierExtension(authorityKeyId.toString("hex"), false),
      ],
    },
    sc.crypto,
  );
  const der = Buffer.from(cert.rawData);
  if (!verifyIssuedSignature(parseCertificate(der), signer.publicKey)) {
    throw new MayflyError("certificate.profile_violation", "a CA certificate does not verify after signing", {
      field: "signatureValue",
    });
  }
  const x = new X509Certificate(der);
  return { der, ski, serial: p.serial, notBefore: x.notBefore.getTime(), notAfter: x.notAfter.getTime() };
}

function toName(n: CaName): string | JsonName {
  if (typeof n === "string") return n;
  // Conventional order, most general first: O then CN.
  return n.organization ? [{ O: [n.organization] }, { CN: [n.commonName] }] : [{ CN: [n.commonName] }];
}

function violation(field: string, detail: string): MayflyError {
  return new MayflyError("certificate.profile_violation", detail, { field });
}

function checkCommon(p: Common): void {
  if (!isMayflySerial(p.serial)) throw violation("serial", "serial is not a 16-octet Mayfly serial");
  if (!isEncodableTime(p.notBefore)) throw violation("notBefore", "notBefore is out of range");
  if (!isEncodableTime(p.notAfter)) throw violation("notAfter", "notAfter is out of range");
  if (Math.floor(p.notAfter / 1000) < Math.floor(p.notBefore / 1000)) {
    throw violation("notAfter", "notAfter is before notBefore");
  }
}

/** Issuer and signer must agree, and a child may not outlive its issuer. */
function checkIssued(p: IssuedParams): { name: Name; ski: Buffer } {
  checkCommon(p);
  const facts = readIssuerCertificate(p.issuerCertificate);
  if (!facts.publicKey.equals(p.issuerSigner.publicKey)) {
    throw violation("issuerSigner", "the signer's key is not the issuer certificate's key");
  }
  const issuerNotAfter = new X509Certificate(p.issuerCertificate).notAfter.getTime();
  if (Math.floor(p.notAfter / 1000) * 1000 > issuerNotAfter) {
    throw violation("notAfter", "the certificate would outlive its issuer");
  }
  try {
    createPublicKey({ key: p.subjectPublicKey, format: "der", type: "spki" });
  } catch (cause) {
    throw new MayflyError("certificate.profile_violation", "subjectPublicKey is not a usable SPKI", {
      field: "subjectPublicKey",
      cause,
    });
  }
  // The issuer certificate's subject DER, so the child's issuer Name matches it byte-for-byte.
  return { name: new Name(facts.subjectName), ski: facts.subjectKeyIdentifier };
}
