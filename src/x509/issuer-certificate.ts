import { createPublicKey, type KeyObject } from "node:crypto";
import { contextTag, TAG_BOOLEAN, TAG_INTEGER, TAG_OCTET_STRING, TAG_SEQUENCE } from "./der.js";
import { DerReader } from "./der-reader.js";
import { OID_SUBJECT_KEY_IDENTIFIER } from "./oids.js";

// What a child certificate copies from its issuer, read straight from the issuer's
// DER so that the child's issuer Name is byte-for-byte the issuer's subject (RFC 5280
// §7.1 name chaining compares them; re-encoding could change string types or order).

export interface IssuerFacts {
  /** The issuer's subject Name TLV, copied verbatim into the child's issuer field. */
  subjectName: Buffer;
  spki: Buffer;
  publicKey: KeyObject;
  /** The issuer's SKI value; becomes the child's AKI keyIdentifier. */
  subjectKeyIdentifier: Buffer;
}

export function readIssuerCertificate(der: Buffer): IssuerFacts {
  const code = "certificate.profile_violation";
  const top = new DerReader(der, code, "issuer.Certificate");
  const cert = top.enter(TAG_SEQUENCE, "issuer.Certificate");
  top.end();
  const tbs = cert.enter(TAG_SEQUENCE, "issuer.tbsCertificate");
  const version = tbs.optional(contextTag(0, true), "issuer.version");
  if (!version) tbs.fail("issuer.version", "the issuer certificate is not X.509 v3");
  tbs.expect(TAG_INTEGER, "issuer.serialNumber");
  tbs.expect(TAG_SEQUENCE, "issuer.signature");
  tbs.expect(TAG_SEQUENCE, "issuer.issuer");
  tbs.expect(TAG_SEQUENCE, "issuer.validity");
  const subjectName = tbs.expect(TAG_SEQUENCE, "issuer.subject").raw;
  const spki = tbs.expect(TAG_SEQUENCE, "issuer.subjectPublicKeyInfo").raw;
  tbs.optional(contextTag(1, false), "issuer.issuerUniqueID");
  tbs.optional(contextTag(2, false), "issuer.subjectUniqueID");
  const extsTag = tbs.optional(contextTag(3, true), "issuer.extensions");
  tbs.end();
  let ski: Buffer | undefined;
  if (extsTag) {
    const exts = tbs.child(extsTag, "issuer.extensions").enter(TAG_SEQUENCE, "issuer.extensions");
    while (!exts.atEnd()) {
      const ext = exts.enter(TAG_SEQUENCE, "issuer.extension");
      const id = ext.oid("issuer.extension.extnID");
      ext.optional(TAG_BOOLEAN, "issuer.extension.critical");
      const value = ext.expect(TAG_OCTET_STRING, "issuer.extension.extnValue").content;
      ext.end();
      if (id === OID_SUBJECT_KEY_IDENTIFIER) {
        const v = new DerReader(value, code, "issuer.subjectKeyIdentifier");
        ski = v.expect(TAG_OCTET_STRING, "issuer.subjectKeyIdentifier").content;
        v.end();
      }
    }
  }
  if (!ski || ski.length === 0) {
    return tbs.fail("issuer.subjectKeyIdentifier", "the issuer certificate has no subject key identifier");
  }
  return {
    subjectName,
    spki,
    publicKey: createPublicKey({ key: spki, format: "der", type: "spki" }),
    subjectKeyIdentifier: ski,
  };
}
