import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import {
  AuthorityKeyIdentifier,
  BasicConstraints,
  ExtendedKeyUsage,
  type Extension,
  KeyUsage,
  KeyUsageFlags,
  SubjectAlternativeName,
  SubjectKeyIdentifier,
  Version,
} from "@peculiar/asn1-x509";
import { MayflyError } from "../errors/index.js";
import { type ParsedCertificate, parseCertificate, verifyIssuedSignature } from "./certificate-signature.js";
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
import "./asn1js-oid-fix.js"; // before any parse: see the file

// The post-signing check. It re-reads a freshly signed leaf with @peculiar/asn1-x509
// (the parser under @peculiar/x509, sharing no code with the hand encoder), checks
// that re-encoding it gives the same octets (so the leaf is canonical DER with
// nothing trailing), verifies the signature with node:crypto against the issuer
// certificate's key, and compares every field with what was intended. Any difference
// means the template encoder or the signer misbehaved: the leaf must not leave.
// One parse, extension values decoded straight from it: @peculiar/x509's
// X509Certificate would parse everything twice more, tripling the cost.

export interface LeafExpectation {
  /** DER of the certificate that should have issued the leaf. */
  issuerCertificate: Buffer;
  leaf: LeafInput;
  /** OID the Mayfly assurance extension must carry (the encoder's); defaults to OID_MAYFLY_ASSURANCE. */
  assuranceOid?: string;
}

export interface IssuerView {
  subject: Buffer;
  ski: Buffer;
  publicKey: KeyObject;
}

const issuerCache = new WeakMap<Buffer, IssuerView>();
// By content too: a caller that re-reads the issuer certificate per request (a fresh Buffer
// each time) must not pay a @peculiar parse per issuance. Issuers are few; bounded anyway.
const issuerByContent = new Map<string, IssuerView>();
const ISSUERS_BY_CONTENT_MAX = 32;

/** The issuer's subject, SKI and key, read once per issuer certificate with @peculiar/asn1-x509. */
export function issuerView(der: Buffer): IssuerView {
  let v = issuerCache.get(der);
  if (v) return v;
  const content = der.toString("latin1");
  v = issuerByContent.get(content);
  if (v) {
    issuerCache.set(der, v);
    return v;
  }
  const tbs = parseCertificate(der).asn.tbsCertificate;
  const skiExt = tbs.extensions?.find((e) => e.extnID === OID_SUBJECT_KEY_IDENTIFIER);
  if (!skiExt) throw violation("issuer.subjectKeyIdentifier", "the issuer certificate has no SKI");
  v = {
    subject: Buffer.from(AsnConvert.serialize(tbs.subject)),
    ski: bytes(AsnConvert.parse(skiExt.extnValue.buffer, SubjectKeyIdentifier).buffer),
    publicKey: createPublicKey({
      key: Buffer.from(AsnConvert.serialize(tbs.subjectPublicKeyInfo)),
      format: "der",
      type: "spki",
    }),
  };
  issuerCache.set(der, v);
  if (issuerByContent.size >= ISSUERS_BY_CONTENT_MAX)
    issuerByContent.delete(issuerByContent.keys().next().value!);
  issuerByContent.set(content, v);
  return v;
}

function violation(field: string, detail: string, cause?: unknown): MayflyError {
  return new MayflyError("certificate.profile_violation", detail, { field, cause });
}

function bytes(b: Uint8Array | ArrayBuffer): Buffer {
  return b instanceof ArrayBuffer ? Buffer.from(b) : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

function same(field: string, got: Uint8Array | ArrayBuffer, want: Uint8Array | ArrayBuffer): void {
  if (!bytes(got).equals(bytes(want))) throw violation(field, `${field} differs from what was intended`);
}

function equal(field: string, got: unknown, want: unknown): void {
  if (got !== want) throw violation(field, `${field} is ${String(got)}, expected ${String(want)}`);
}

const Y2050 = Date.UTC(2050, 0, 1);

// In this order; the Mayfly assurance OID is configurable, so its entry holds a placeholder.
const EXPECTED_EXTENSIONS: readonly [string | null, boolean, string][] = [
  [OID_BASIC_CONSTRAINTS, true, "basicConstraints"],
  [OID_KEY_USAGE, true, "keyUsage"],
  [OID_EXT_KEY_USAGE, false, "extKeyUsage"],
  [OID_SUBJECT_ALT_NAME, true, "subjectAltName"],
  [OID_AUTHORITY_KEY_IDENTIFIER, false, "authorityKeyIdentifier"],
  [OID_SUBJECT_KEY_IDENTIFIER, false, "subjectKeyIdentifier"],
  [null, false, "mayflyAssurance"],
];

/** Throws certificate.profile_violation naming the first field that is not as intended. */
export function checkLeaf(der: Buffer, expected: LeafExpectation): void {
  const issuer = issuerView(expected.issuerCertificate);
  const want = expected.leaf;
  let parsed: ParsedCertificate;
  try {
    parsed = parseCertificate(der);
  } catch (cause) {
    throw violation("Certificate", "the certificate does not parse", cause);
  }
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
  for (const [name, time, ms] of [
    ["notBefore", tbs.validity.notBefore, want.notBefore],
    ["notAfter", tbs.validity.notAfter, want.notAfter],
  ] as const) {
    const field = `tbsCertificate.validity.${name}`;
    equal(field, time.getTime().getTime(), Math.floor(ms / 1000) * 1000);
    equal(
      `${field}.type`,
      time.utcTime ? "UTCTime" : "GeneralizedTime",
      ms < Y2050 ? "UTCTime" : "GeneralizedTime",
    );
  }
  equal("tbsCertificate.subject", tbs.subject.length, 0);
  same("tbsCertificate.subjectPublicKeyInfo", AsnConvert.serialize(tbs.subjectPublicKeyInfo), want.spki);
  if (tbs.issuerUniqueID || tbs.subjectUniqueID)
    throw violation("tbsCertificate.uniqueID", "unique IDs are present");

  const exts = tbs.extensions ?? [];
  const assuranceOid = expected.assuranceOid ?? OID_MAYFLY_ASSURANCE;
  equal("tbsCertificate.extensions.length", exts.length, EXPECTED_EXTENSIONS.length);
  EXPECTED_EXTENSIONS.forEach(([oid, critical, name], i) => {
    const ext = exts[i]!;
    equal(`extensions[${i}].extnID`, ext.extnID, oid ?? assuranceOid);
    equal(`extensions.${name}.critical`, ext.critical, critical);
  });
  const v = <T>(i: number, type: new () => T, name: string): T => {
    try {
      return AsnConvert.parse((exts[i] as Extension).extnValue.buffer, type);
    } catch (cause) {
      throw violation(`extensions.${name}`, `${name} does not parse`, cause);
    }
  };

  const bc = v(0, BasicConstraints, "basicConstraints");
  equal("extensions.basicConstraints.cA", bc.cA, false);
  equal("extensions.basicConstraints.pathLenConstraint", bc.pathLenConstraint, undefined);
  equal("extensions.keyUsage", v(1, KeyUsage, "keyUsage").toNumber(), KeyUsageFlags.digitalSignature);
  const eku = v(2, ExtendedKeyUsage, "extKeyUsage");
  equal("extensions.extKeyUsage", eku.join(","), `${OID_KP_CLIENT_AUTH},${OID_KP_SERVER_AUTH}`);
  const san = v(3, SubjectAlternativeName, "subjectAltName");
  equal("extensions.subjectAltName.count", san.length, 1);
  const uri = san[0]!;
  equal("extensions.subjectAltName.uri", uri.uniformResourceIdentifier, want.spiffeId);
  if (Object.values(uri).filter((x) => x !== undefined).length !== 1) {
    throw violation("extensions.subjectAltName.type", "the GeneralName is not only a URI");
  }
  const aki = v(4, AuthorityKeyIdentifier, "authorityKeyIdentifier");
  if (!aki.keyIdentifier || aki.authorityCertIssuer || aki.authorityCertSerialNumber) {
    throw violation("extensions.authorityKeyIdentifier", "not a keyIdentifier-only AKI");
  }
  same("extensions.authorityKeyIdentifier.keyIdentifier", aki.keyIdentifier.buffer, issuer.ski);
  const keyId = createHash("sha1").update(new Uint8Array(tbs.subjectPublicKeyInfo.subjectPublicKey)).digest();
  same("extensions.subjectKeyIdentifier", v(5, SubjectKeyIdentifier, "subjectKeyIdentifier").buffer, keyId);
  const got = v(6, MayflyAssuranceAsn, "mayflyAssurance");
  const a = want.assurance;
  equal("extensions.mayflyAssurance.version", got.version, 1);
  equal("extensions.mayflyAssurance.ownerId", got.ownerId, a.ownerId);
  equal("extensions.mayflyAssurance.deviceId", got.deviceId, a.deviceId);
  equal("extensions.mayflyAssurance.agentId", got.agentId, a.agentId);
  equal("extensions.mayflyAssurance.attestationFormat", got.attestationFormat, a.attestationFormat);
  equal("extensions.mayflyAssurance.keyResidency", got.keyResidency, a.keyResidency === "tpm" ? 0 : 1);
}
