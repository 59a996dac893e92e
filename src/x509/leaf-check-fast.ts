import { constants, createHash, type KeyObject, verify } from "node:crypto";
import { isMayflyError, MayflyError } from "../errors/index.js";
import { DerReader, decodeOid, type Tlv } from "./der-reader.js";
import { issuerView, type LeafExpectation } from "./leaf-check.js";
import {
  OID_AUTHORITY_KEY_IDENTIFIER,
  OID_BASIC_CONSTRAINTS,
  OID_ECDSA_WITH_SHA256,
  OID_ECDSA_WITH_SHA384,
  OID_EXT_KEY_USAGE,
  OID_KEY_USAGE,
  OID_KP_CLIENT_AUTH,
  OID_KP_SERVER_AUTH,
  OID_MAYFLY_ASSURANCE,
  OID_SHA256_WITH_RSA,
  OID_SUBJECT_ALT_NAME,
  OID_SUBJECT_KEY_IDENTIFIER,
} from "./oids.js";

// The post-signing check of the issuance hot path. It reads the freshly signed leaf with
// a strict DER walker (der-reader.ts: definite minimal lengths, nothing trailing at any
// level) and decodes every field back to a value -- times to instants, OIDs to dotted
// text, strings through a fatal UTF-8 decoder -- to compare with what was intended; it
// shares no code with the template encoder (leaf-encoder.ts, der.ts), which writes
// bytes and never reads them. node:crypto verifies the signature over the TBS octets as
// received with the issuer certificate's key (read once per issuer with @peculiar, in
// leaf-check.ts). Any difference means the encoder or the signer misbehaved and the leaf
// must not leave. The reference check, checkLeaf (a full @peculiar/asn1-x509 parse and
// re-encode, ~1.3 ms), stays in the tests: test/x509 proves the two agree on the
// differential property test and on every tampered leaf.
//
// Errors are certificate.profile_violation with the same field names checkLeaf uses.

const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  ENUMERATED: 0x0a,
  UTF8_STRING: 0x0c,
  SEQUENCE: 0x30,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  VERSION: 0xa0, // [0] EXPLICIT
  ISSUER_UID: 0x81, // [1] IMPLICIT
  SUBJECT_UID: 0x82, // [2] IMPLICIT
  EXTENSIONS: 0xa3, // [3] EXPLICIT
  AKI_KEY_ID: 0x80, // [0] IMPLICIT in AuthorityKeyIdentifier
  URI: 0x86, // GeneralName uniformResourceIdentifier [6] IMPLICIT IA5String
} as const;

const CODE = "certificate.profile_violation";

function violation(field: string, detail: string, cause?: unknown): MayflyError {
  return new MayflyError(CODE, detail, { field, cause });
}

function equal(field: string, got: unknown, want: unknown): void {
  if (got !== want) throw violation(field, `${field} is ${String(got)}, expected ${String(want)}`);
}

function same(field: string, got: Buffer, want: Buffer): void {
  if (!got.equals(want)) throw violation(field, `${field} differs from what was intended`);
}

// OIDs repeat from leaf to leaf; decoding is the slow part (big arcs need BigInt), so
// decoded texts are kept by their content octets. Bounded: a leaf has a dozen OIDs.
const oidTexts = new Map<string, string>();
function oidText(r: DerReader, field: string): string {
  const c = r.expect(TAG.OID, field).content;
  const key = c.toString("latin1");
  let text = oidTexts.get(key);
  if (text === undefined) {
    text = decodeOid(c, (d) => r.fail(field, `${field}: ${d}`));
    if (oidTexts.size < 256) oidTexts.set(key, text);
  }
  return text;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });
function utf8Text(r: DerReader, field: string): string {
  const c = r.expect(TAG.UTF8_STRING, field).content;
  try {
    return utf8.decode(c);
  } catch (cause) {
    throw violation(field, `${field} is not UTF-8`, cause);
  }
}

// The algorithms Mayfly signs leaves with, and how to verify each.
const SIGNATURE_ALGORITHMS: Record<string, { hash: string; kind: "ec" | "rsa" }> = {
  [OID_ECDSA_WITH_SHA256]: { hash: "sha256", kind: "ec" },
  [OID_ECDSA_WITH_SHA384]: { hash: "sha384", kind: "ec" },
  [OID_SHA256_WITH_RSA]: { hash: "sha256", kind: "rsa" },
};

function readSignatureAlgorithm(t: Tlv): { hash: string; kind: "ec" | "rsa" } {
  const field = "signatureAlgorithm";
  const r = new DerReader(t.content, CODE, field);
  const id = oidText(r, `${field}.algorithm`);
  const alg = SIGNATURE_ALGORITHMS[id];
  if (!alg) throw violation(field, `signature algorithm ${id} is not one Mayfly signs with`);
  if (alg.kind === "rsa") {
    // RFC 4055 §5: NULL parameters for sha256WithRSAEncryption.
    const p = r.expect(TAG.NULL, `${field}.parameters`);
    if (p.content.length !== 0) r.fail(`${field}.parameters`, "the NULL is not empty");
  }
  // RFC 5758 §3.2: no parameters at all for ECDSA.
  r.end();
  return alg;
}

function verifySignature(
  tbs: Buffer,
  alg: { hash: string; kind: "ec" | "rsa" },
  sig: Buffer,
  key: KeyObject,
) {
  if ((alg.kind === "ec") !== (key.asymmetricKeyType === "ec")) return false;
  try {
    return alg.kind === "ec"
      ? verify(alg.hash, tbs, { key, dsaEncoding: "der" }, sig)
      : verify(alg.hash, tbs, { key, padding: constants.RSA_PKCS1_PADDING }, sig);
  } catch {
    return false;
  }
}

const DIGITS = /^[0-9]+$/;
const Y2050 = Date.UTC(2050, 0, 1);

/**
 * A DER time (RFC 5280 §4.1.2.5): UTCTime YYMMDDHHMMSSZ for 1950-2049, GeneralizedTime
 * YYYYMMDDHHMMSSZ otherwise; seconds present, no fraction, Zulu. Returns epoch ms.
 */
function readTime(r: DerReader, field: string): { ms: number; utc: boolean } {
  const tag = r.peekTag();
  if (tag !== TAG.UTC_TIME && tag !== TAG.GENERALIZED_TIME) r.fail(field, `${field} is not a time`);
  const text = r.any(field).content.toString("latin1");
  const utc = tag === TAG.UTC_TIME;
  const digits = text.slice(0, -1);
  if (text.length !== (utc ? 13 : 15) || !text.endsWith("Z") || !DIGITS.test(digits)) {
    r.fail(field, `${field} is not a DER ${utc ? "UTCTime" : "GeneralizedTime"}`);
  }
  let year: number;
  let rest: string;
  if (utc) {
    const yy = Number(digits.slice(0, 2));
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    rest = digits.slice(2);
  } else {
    year = Number(digits.slice(0, 4));
    rest = digits.slice(4);
  }
  const [mo, d, h, mi, s] = [0, 2, 4, 6, 8].map((i) => Number(rest.slice(i, i + 2))) as [
    number,
    number,
    number,
    number,
    number,
  ];
  const ms = Date.UTC(year, mo - 1, d, h, mi, s);
  const back = new Date(ms);
  // Date.UTC rolls 31 February over into March; a real date reads back unchanged.
  if (
    mo < 1 ||
    mo > 12 ||
    h > 23 ||
    mi > 59 ||
    s > 59 ||
    back.getUTCFullYear() !== year ||
    back.getUTCMonth() !== mo - 1 ||
    back.getUTCDate() !== d
  ) {
    r.fail(field, `${field} is not a valid date`);
  }
  return { ms, utc };
}

interface Ext {
  id: string;
  critical: boolean;
  value: Buffer;
}

function readExtensions(t: Tlv): Ext[] {
  const outer = new DerReader(t.content, CODE, "tbsCertificate.extensions");
  const seq = outer.enter(TAG.SEQUENCE, "tbsCertificate.extensions");
  outer.end();
  const out: Ext[] = [];
  while (!seq.atEnd()) {
    const i = out.length;
    const e = seq.enter(TAG.SEQUENCE, `extensions[${i}]`);
    const id = oidText(e, `extensions[${i}].extnID`);
    let critical = false;
    const b = e.optional(TAG.BOOLEAN, `extensions[${i}].critical`);
    if (b) {
      // DER: critical DEFAULT FALSE is absent when false; TRUE is 0xFF.
      if (b.content.length !== 1 || b.content[0] !== 0xff) {
        e.fail(`extensions[${i}].critical`, "critical is not a DER TRUE");
      }
      critical = true;
    }
    const value = e.expect(TAG.OCTET_STRING, `extensions[${i}].extnValue`).content;
    e.end();
    out.push({ id, critical, value });
  }
  if (out.length === 0) seq.fail("tbsCertificate.extensions", "an empty extensions SEQUENCE is not DER");
  return out;
}

// In this order; the Mayfly assurance OID is configurable, so its entry holds null.
const EXPECTED_EXTENSIONS: readonly [string | null, boolean, string][] = [
  [OID_BASIC_CONSTRAINTS, true, "basicConstraints"],
  [OID_KEY_USAGE, true, "keyUsage"],
  [OID_EXT_KEY_USAGE, false, "extKeyUsage"],
  [OID_SUBJECT_ALT_NAME, true, "subjectAltName"],
  [OID_AUTHORITY_KEY_IDENTIFIER, false, "authorityKeyIdentifier"],
  [OID_SUBJECT_KEY_IDENTIFIER, false, "subjectKeyIdentifier"],
  [null, false, "mayflyAssurance"],
];

/** A reader over one extension value that must be consumed whole. */
function valueReader(e: Ext, name: string): DerReader {
  return new DerReader(e.value, CODE, `extensions.${name}`);
}

function checkBasicConstraints(e: Ext): void {
  const top = valueReader(e, "basicConstraints");
  const bc = top.enter(TAG.SEQUENCE, "extensions.basicConstraints");
  top.end();
  // cA DEFAULT FALSE: present at all means TRUE in DER.
  if (bc.optional(TAG.BOOLEAN, "extensions.basicConstraints.cA")) {
    throw violation("extensions.basicConstraints.cA", "the leaf claims to be a CA");
  }
  if (bc.optional(TAG.INTEGER, "extensions.basicConstraints.pathLenConstraint")) {
    throw violation("extensions.basicConstraints.pathLenConstraint", "a leaf has no path length");
  }
  bc.end();
}

function checkKeyUsage(e: Ext): void {
  const r = valueReader(e, "keyUsage");
  const bits = r.expect(TAG.BIT_STRING, "extensions.keyUsage").content;
  r.end();
  // digitalSignature (bit 0) alone, trailing zero bits removed: 7 unused bits, 0x80.
  if (bits.length !== 2 || bits[0] !== 7 || bits[1] !== 0x80) {
    throw violation("extensions.keyUsage", "keyUsage is not digitalSignature alone");
  }
}

function checkExtKeyUsage(e: Ext): void {
  const top = valueReader(e, "extKeyUsage");
  const seq = top.enter(TAG.SEQUENCE, "extensions.extKeyUsage");
  top.end();
  const ids: string[] = [];
  while (!seq.atEnd()) ids.push(oidText(seq, "extensions.extKeyUsage"));
  equal("extensions.extKeyUsage", ids.join(","), `${OID_KP_CLIENT_AUTH},${OID_KP_SERVER_AUTH}`);
}

function checkSubjectAltName(e: Ext, spiffeId: string): void {
  const top = valueReader(e, "subjectAltName");
  const seq = top.enter(TAG.SEQUENCE, "extensions.subjectAltName");
  top.end();
  const names: Tlv[] = [];
  while (!seq.atEnd()) names.push(seq.any("extensions.subjectAltName"));
  equal("extensions.subjectAltName.count", names.length, 1);
  const gn = names[0]!;
  if (gn.tag !== TAG.URI)
    throw violation("extensions.subjectAltName.type", "the GeneralName is not only a URI");
  const uri = gn.content;
  for (const b of uri) {
    if (b > 0x7f) throw violation("extensions.subjectAltName.uri", "the URI is not IA5String");
  }
  equal("extensions.subjectAltName.uri", uri.toString("latin1"), spiffeId);
}

function checkAuthorityKeyIdentifier(e: Ext, issuerSki: Buffer): void {
  const top = valueReader(e, "authorityKeyIdentifier");
  const seq = top.enter(TAG.SEQUENCE, "extensions.authorityKeyIdentifier");
  top.end();
  const keyId = seq.optional(TAG.AKI_KEY_ID, "extensions.authorityKeyIdentifier.keyIdentifier");
  if (!keyId || !seq.atEnd()) {
    throw violation("extensions.authorityKeyIdentifier", "not a keyIdentifier-only AKI");
  }
  same("extensions.authorityKeyIdentifier.keyIdentifier", keyId.content, issuerSki);
}

/** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey BIT STRING's bits. */
function publicKeyBits(spki: Tlv): Buffer {
  const r = new DerReader(spki.content, CODE, "tbsCertificate.subjectPublicKeyInfo");
  r.expect(TAG.SEQUENCE, "tbsCertificate.subjectPublicKeyInfo.algorithm");
  const bits = r.expect(TAG.BIT_STRING, "tbsCertificate.subjectPublicKeyInfo.subjectPublicKey").content;
  r.end();
  if (bits.length < 2 || bits[0] !== 0) {
    r.fail("tbsCertificate.subjectPublicKeyInfo.subjectPublicKey", "the key is not whole octets");
  }
  return bits.subarray(1);
}

function checkSubjectKeyIdentifier(e: Ext, spki: Tlv): void {
  const r = valueReader(e, "subjectKeyIdentifier");
  const got = r.expect(TAG.OCTET_STRING, "extensions.subjectKeyIdentifier").content;
  r.end();
  same("extensions.subjectKeyIdentifier", got, createHash("sha1").update(publicKeyBits(spki)).digest());
}

function checkAssurance(e: Ext, want: LeafExpectation["leaf"]["assurance"]): void {
  const f = "extensions.mayflyAssurance";
  const top = valueReader(e, "mayflyAssurance");
  const seq = top.enter(TAG.SEQUENCE, f);
  top.end();
  equal(`${f}.version`, seq.smallInteger(`${f}.version`), 1);
  equal(`${f}.ownerId`, utf8Text(seq, `${f}.ownerId`), want.ownerId);
  equal(`${f}.deviceId`, utf8Text(seq, `${f}.deviceId`), want.deviceId);
  equal(`${f}.agentId`, utf8Text(seq, `${f}.agentId`), want.agentId);
  equal(`${f}.attestationFormat`, utf8Text(seq, `${f}.attestationFormat`), want.attestationFormat);
  const residency = seq.expect(TAG.ENUMERATED, `${f}.keyResidency`).content;
  equal(`${f}.keyResidency`, residency.length === 1 ? residency[0] : -1, want.keyResidency === "tpm" ? 0 : 1);
  seq.end();
}

/** Throws certificate.profile_violation naming the first field that is not as intended. */
export function checkLeafFast(der: Buffer, expected: LeafExpectation): void {
  const issuer = issuerView(expected.issuerCertificate);
  const want = expected.leaf;
  try {
    walk(der, expected, issuer, want);
  } catch (e) {
    if (isMayflyError(e) && e.code === CODE) throw e;
    throw violation("Certificate", "the certificate does not parse", e);
  }
}

function walk(
  der: Buffer,
  expected: LeafExpectation,
  issuer: ReturnType<typeof issuerView>,
  want: LeafExpectation["leaf"],
): void {
  // Structure first: anything malformed anywhere is "Certificate", as the reference has it.
  let cert: DerReader;
  let tbsTlv: Tlv;
  let algTlv: Tlv;
  let signature: Buffer;
  try {
    const top = new DerReader(der, CODE, "Certificate");
    cert = top.enter(TAG.SEQUENCE, "Certificate");
    top.end();
    tbsTlv = cert.expect(TAG.SEQUENCE, "Certificate");
    algTlv = cert.expect(TAG.SEQUENCE, "Certificate");
    signature = cert.octetAlignedBits("Certificate");
    cert.end();
  } catch (cause) {
    throw violation("Certificate", "the certificate does not parse", cause);
  }
  const alg = readSignatureAlgorithm(algTlv);
  if (!verifySignature(tbsTlv.raw, alg, signature, issuer.publicKey)) {
    throw violation("signatureValue", "the signature does not verify with the issuer key");
  }

  const tbs = new DerReader(tbsTlv.content, CODE, "tbsCertificate");
  const version = tbs.optional(TAG.VERSION, "tbsCertificate.version");
  const v = version ? new DerReader(version.content, CODE, "tbsCertificate.version") : null;
  equal("tbsCertificate.version", v ? v.smallInteger("tbsCertificate.version") : 0, 2);
  v?.end();
  same("tbsCertificate.serialNumber", tbs.integerBytes("tbsCertificate.serialNumber"), want.serial);
  same("tbsCertificate.signature", tbs.expect(TAG.SEQUENCE, "tbsCertificate.signature").raw, algTlv.raw);
  same("tbsCertificate.issuer", tbs.expect(TAG.SEQUENCE, "tbsCertificate.issuer").raw, issuer.subject);
  const validity = tbs.enter(TAG.SEQUENCE, "tbsCertificate.validity");
  for (const [name, ms] of [
    ["notBefore", want.notBefore],
    ["notAfter", want.notAfter],
  ] as const) {
    const field = `tbsCertificate.validity.${name}`;
    const t = readTime(validity, field);
    equal(field, t.ms, Math.floor(ms / 1000) * 1000);
    const utcWanted = ms < Y2050 && ms >= Date.UTC(1950, 0, 1);
    equal(`${field}.type`, t.utc ? "UTCTime" : "GeneralizedTime", utcWanted ? "UTCTime" : "GeneralizedTime");
  }
  validity.end();
  const subject = tbs.expect(TAG.SEQUENCE, "tbsCertificate.subject");
  equal("tbsCertificate.subject", subject.content.length, 0);
  const spki = tbs.expect(TAG.SEQUENCE, "tbsCertificate.subjectPublicKeyInfo");
  same("tbsCertificate.subjectPublicKeyInfo", spki.raw, want.spki);
  if (
    tbs.optional(TAG.ISSUER_UID, "tbsCertificate.issuerUniqueID") ||
    tbs.optional(TAG.SUBJECT_UID, "tbsCertificate.subjectUniqueID")
  ) {
    throw violation("tbsCertificate.uniqueID", "unique IDs are present");
  }
  const extsTlv = tbs.optional(TAG.EXTENSIONS, "tbsCertificate.extensions");
  tbs.end();

  const exts = extsTlv ? readExtensions(extsTlv) : [];
  const assuranceOid = expected.assuranceOid ?? OID_MAYFLY_ASSURANCE;
  equal("tbsCertificate.extensions.length", exts.length, EXPECTED_EXTENSIONS.length);
  EXPECTED_EXTENSIONS.forEach(([oid, critical, name], i) => {
    equal(`extensions[${i}].extnID`, exts[i]!.id, oid ?? assuranceOid);
    equal(`extensions.${name}.critical`, exts[i]!.critical, critical);
  });
  checkBasicConstraints(exts[0]!);
  checkKeyUsage(exts[1]!);
  checkExtKeyUsage(exts[2]!);
  checkSubjectAltName(exts[3]!, want.spiffeId);
  checkAuthorityKeyIdentifier(exts[4]!, issuer.ski);
  checkSubjectKeyIdentifier(exts[5]!, spki);
  checkAssurance(exts[6]!, want.assurance);
}
