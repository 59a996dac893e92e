import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Version } from "@peculiar/asn1-x509";
import { MayflyError } from "../errors/index.js";
import { parseCertificate, verifyIssuedSignature } from "./certificate-signature.js";
import type { LeafInput } from "./leaf-input.js";
import { MayflyAssuranceAsn } from "./mayfly-extension-schema.js";
import {
  OID_AUTHORITY_KEY_IDENTIFIER,
  OID_BASIC_CONSTRAINTS,
  OID_EXT_KEY_USAGE,
  OID_KEY_USAGE,
  OID_KP_CLIENT_AUTH,
  OID_KP_SERVER_AUTH,
  OID_MAYFLY_ASSURANCE,
  OID_SUBJECT_ALT_NAME,
  OID_SUBJECT_KEY_IDENTIFIER,
} from "./oids.js";
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  type Extension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  SubjectKeyIdentifierExtension,
  X509Certificate,
} from "./peculiar.js";

// The post-signing check. It re-reads a freshly signed leaf with @peculiar/x509 and
// @peculiar/asn1-x509 — parsers that share no code with the hand encoder — and
// compares every field with what was intended. Any difference means the template
// encoder (or the signer) misbehaved, and the leaf must not leave the CA.

export interface LeafExpectation {
  /** DER of the certificate that should have issued the leaf. */
  issuerCertificate: Buffer;
  leaf: LeafInput;
}

interface IssuerView {
  subject: Buffer;
  ski: string;
  publicKey: KeyObject;
}

const issuerCache = new WeakMap<Buffer, IssuerView>();

function issuerView(der: Buffer): IssuerView {
  let v = issuerCache.get(der);
  if (!v) {
    const cert = new X509Certificate(der);
    const ski = cert.getExtension(SubjectKeyIdentifierExtension);
    if (!ski) throw violation("issuer.subjectKeyIdentifier", "the issuer certificate has no SKI");
    v = {
      subject: Buffer.from(AsnConvert.serialize(parseCertificate(der).asn.tbsCertificate.subject)),
      ski: ski.keyId,
      publicKey: createPublicKey({ key: Buffer.from(cert.publicKey.rawData), format: "der", type: "spki" }),
    };
    issuerCache.set(der, v);
  }
  return v;
}

function violation(field: string, detail: string, cause?: unknown): MayflyError {
  return new MayflyError("certificate.profile_violation", detail, { field, cause });
}

function bytes(b: Uint8Array | ArrayBuffer): Buffer {
  return b instanceof ArrayBuffer ? Buffer.from(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function same(field: string, got: Uint8Array | ArrayBuffer, want: Uint8Array | ArrayBuffer): void {
  if (!bytes(got).equals(bytes(want))) {
    throw violation(field, `${field} differs from what was intended`);
  }
}

function equal(field: string, got: unknown, want: unknown): void {
  if (got !== want) throw violation(field, `${field} is ${String(got)}, expected ${String(want)}`);
}

const EXPECTED_EXTENSIONS: readonly [string, boolean, string][] = [
  [OID_BASIC_CONSTRAINTS, true, "basicConstraints"],
  [OID_KEY_USAGE, true, "keyUsage"],
  [OID_EXT_KEY_USAGE, false, "extKeyUsage"],
  [OID_SUBJECT_ALT_NAME, true, "subjectAltName"],
  [OID_AUTHORITY_KEY_IDENTIFIER, false, "authorityKeyIdentifier"],
  [OID_SUBJECT_KEY_IDENTIFIER, false, "subjectKeyIdentifier"],
  [OID_MAYFLY_ASSURANCE, false, "mayflyAssurance"],
];

/** Throws certificate.profile_violation naming the first field that is not as intended. */
export function checkLeaf(der: Buffer, expected: LeafExpectation): void {
  const issuer = issuerView(expected.issuerCertificate);
  const want = expected.leaf;
  let parsed: ReturnType<typeof parseCertificate>;
  let cert: X509Certificate;
  try {
    parsed = parseCertificate(der);
    cert = new X509Certificate(der);
  } catch (cause) {
    throw violation("Certificate", "the certificate does not parse", cause);
  }
  // Re-serializing with an independent encoder must give the same octets: catches
  // trailing bytes, non-minimal lengths and any non-DER choice.
  same("Certificate", AsnConvert.serialize(parsed.asn), der);
  if (!verifyIssuedSignature(parsed, issuer.publicKey)) {
    throw violation("signatureValue", "the signature does not verify with the issuer key");
  }
  const tbs = parsed.asn.tbsCertificate;
  equal("tbsCertificate.version", tbs.version, Version.v3);
  same("tbsCertificate.serialNumber", tbs.serialNumber, want.serial);
  same(
    "tbsCertificate.signature",
    AsnConvert.serialize(tbs.signature),
    AsnConvert.serialize(parsed.asn.signatureAlgorithm),
  );
  same("tbsCertificate.issuer", AsnConvert.serialize(tbs.issuer), issuer.subject);
  const nb = tbs.validity.notBefore;
  const na = tbs.validity.notAfter;
  equal(
    "tbsCertificate.validity.notBefore",
    nb.getTime().getTime(),
    Math.floor(want.notBefore / 1000) * 1000,
  );
  equal("tbsCertificate.validity.notAfter", na.getTime().getTime(), Math.floor(want.notAfter / 1000) * 1000);
  equal("tbsCertificate.subject", tbs.subject.length, 0);
  same("tbsCertificate.subjectPublicKeyInfo", AsnConvert.serialize(tbs.subjectPublicKeyInfo), want.spki);
  if (tbs.issuerUniqueID || tbs.subjectUniqueID)
    throw violation("tbsCertificate.uniqueID", "unique IDs are present");

  const exts = cert.extensions;
  equal("tbsCertificate.extensions.length", exts.length, EXPECTED_EXTENSIONS.length);
  EXPECTED_EXTENSIONS.forEach(([oid, critical, name], i) => {
    const ext = exts[i] as Extension;
    equal(`extensions[${i}].extnID`, ext.type, oid);
    equal(`extensions.${name}.critical`, ext.critical, critical);
  });
  const [bc, ku, eku, san, aki, ski, mayfly] = exts as Extension[];
  checkBasics(bc, ku, eku);
  if (!(san instanceof SubjectAlternativeNameExtension))
    throw violation("extensions.subjectAltName", "not parsed");
  const names = san.names.items;
  equal("extensions.subjectAltName.count", names.length, 1);
  equal("extensions.subjectAltName.type", names[0]?.type, "url");
  equal("extensions.subjectAltName.uri", names[0]?.value, want.spiffeId);
  if (!(aki instanceof AuthorityKeyIdentifierExtension) || aki.certId) {
    throw violation("extensions.authorityKeyIdentifier", "not a keyIdentifier-only AKI");
  }
  equal("extensions.authorityKeyIdentifier.keyIdentifier", aki.keyId, issuer.ski);
  if (!(ski instanceof SubjectKeyIdentifierExtension))
    throw violation("extensions.subjectKeyIdentifier", "not parsed");
  const keyId = createHash("sha1")
    .update(new Uint8Array(tbs.subjectPublicKeyInfo.subjectPublicKey))
    .digest("hex");
  equal("extensions.subjectKeyIdentifier.keyIdentifier", ski.keyId, keyId);
  checkAssurance(mayfly!, want);
}

function checkBasics(bc: Extension | undefined, ku: Extension | undefined, eku: Extension | undefined): void {
  if (!(bc instanceof BasicConstraintsExtension) || bc.ca || bc.pathLength !== undefined) {
    throw violation("extensions.basicConstraints", "basicConstraints is not CA:FALSE without a path length");
  }
  if (!(ku instanceof KeyUsagesExtension)) throw violation("extensions.keyUsage", "not parsed");
  equal("extensions.keyUsage.usages", ku.usages, KeyUsageFlags.digitalSignature);
  if (!(eku instanceof ExtendedKeyUsageExtension)) throw violation("extensions.extKeyUsage", "not parsed");
  equal(
    "extensions.extKeyUsage.usages",
    eku.usages.join(","),
    [OID_KP_CLIENT_AUTH, OID_KP_SERVER_AUTH].join(","),
  );
}

function checkAssurance(ext: Extension, want: LeafInput): void {
  let got: MayflyAssuranceAsn;
  try {
    got = AsnConvert.parse(ext.value, MayflyAssuranceAsn);
  } catch (cause) {
    throw violation("extensions.mayflyAssurance", "the Mayfly extension does not parse", cause);
  }
  const a = want.assurance;
  equal("extensions.mayflyAssurance.version", got.version, 1);
  equal("extensions.mayflyAssurance.ownerId", got.ownerId, a.ownerId);
  equal("extensions.mayflyAssurance.deviceId", got.deviceId, a.deviceId);
  equal("extensions.mayflyAssurance.agentId", got.agentId, a.agentId);
  equal("extensions.mayflyAssurance.attestationFormat", got.attestationFormat, a.attestationFormat);
  equal("extensions.mayflyAssurance.keyResidency", got.keyResidency, a.keyResidency === "tpm" ? 0 : 1);
}
