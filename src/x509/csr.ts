import { MayflyError } from "../errors/index.js";
import { type AgentKey, readAgentKey } from "./agent-key.js";
import {
  type CsrSignatureAlgorithm,
  readCsrSignatureAlgorithm,
  verifyCsrSignature,
} from "./csr-signature.js";
import { contextTag, TAG_SEQUENCE, TAG_SET } from "./der.js";
import { DerReader } from "./der-reader.js";

// PKCS#10 (RFC 2986) reading: parse strictly, verify the signature over the exact
// CertificationRequestInfo octets received, apply the agent key policy. Subject and
// attributes are parsed for structure only and then ignored: the CA, not the
// requester, decides what goes into the certificate.
//
// Codes: csr.malformed for anything structurally wrong (named by `field`),
// csr.key_unsupported for a key or signature algorithm Mayfly refuses (weak hashes
// included), csr.signature_invalid when the signature does not verify.

export type CsrInfo = AgentKey & {
  signatureAlgorithm: CsrSignatureAlgorithm;
};

/** Far above any CSR Mayfly accepts (RSA-8192 is ~2.3 kB); bounds parsing work. */
export const CSR_MAX_OCTETS = 16 * 1024;

export function readCsr(der: Uint8Array): CsrInfo {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  if (buf.length > CSR_MAX_OCTETS) {
    throw new MayflyError("csr.malformed", `CSR larger than ${CSR_MAX_OCTETS} octets`, {
      field: "CertificationRequest",
    });
  }
  const top = new DerReader(buf, "csr.malformed", "CertificationRequest");
  const req = top.enter(TAG_SEQUENCE, "CertificationRequest");
  top.end();
  const infoTlv = req.expect(TAG_SEQUENCE, "CertificationRequestInfo");
  const algReader = req.enter(TAG_SEQUENCE, "CertificationRequest.signatureAlgorithm");
  const signature = req.octetAlignedBits("CertificationRequest.signature");
  req.end();

  const info = req.child(infoTlv, "CertificationRequestInfo");
  const version = info.smallInteger("CertificationRequestInfo.version");
  if (version !== 0)
    info.fail("CertificationRequestInfo.version", `CSR version ${version} (only v1, 0, exists)`);
  readName(info.enter(TAG_SEQUENCE, "CertificationRequestInfo.subject"));
  const spkiTlv = info.expect(TAG_SEQUENCE, "CertificationRequestInfo.subjectPKInfo");
  readAttributes(info.enter(contextTag(0, true), "CertificationRequestInfo.attributes"));
  info.end();

  // The key first: for an unusable key (say Ed25519) that is the more useful answer.
  const key = readAgentKey(spkiTlv.raw, "CertificationRequestInfo.subjectPKInfo");
  const alg = readCsrSignatureAlgorithm(algReader);
  if ((alg.kind === "ecdsa") !== (key.keyType === "ec")) {
    throw new MayflyError("csr.malformed", `a ${key.keyType} key cannot make a ${alg.name} signature`, {
      field: "CertificationRequest.signatureAlgorithm",
    });
  }
  if (!verifyCsrSignature(alg, key.publicKey, infoTlv.raw, signature)) {
    throw new MayflyError("csr.signature_invalid", "the CSR signature does not verify", {
      field: "CertificationRequest.signature",
    });
  }
  // Added to the key's own fresh object, not `{ ...key, signatureAlgorithm }`: on Node 20 a
  // spread followed by members costs µs.
  return Object.assign(key, { signatureAlgorithm: alg });
}

// Name ::= SEQUENCE OF RelativeDistinguishedName
// RelativeDistinguishedName ::= SET SIZE (1..MAX) OF AttributeTypeAndValue
// AttributeTypeAndValue ::= SEQUENCE { type OBJECT IDENTIFIER, value ANY }
function readName(name: DerReader): void {
  const f = "CertificationRequestInfo.subject";
  while (!name.atEnd()) {
    const rdn = name.enter(TAG_SET, `${f}.rdn`);
    if (rdn.atEnd()) rdn.fail(`${f}.rdn`, "empty RelativeDistinguishedName");
    while (!rdn.atEnd()) {
      const atv = rdn.enter(TAG_SEQUENCE, `${f}.rdn.attribute`);
      atv.oid(`${f}.rdn.attribute.type`);
      atv.any(`${f}.rdn.attribute.value`);
      atv.end();
    }
  }
}

// Attributes ::= SET OF Attribute; Attribute ::= SEQUENCE { type OID, values SET OF ANY }
function readAttributes(attrs: DerReader): void {
  const f = "CertificationRequestInfo.attributes";
  while (!attrs.atEnd()) {
    const attr = attrs.enter(TAG_SEQUENCE, `${f}.attribute`);
    attr.oid(`${f}.attribute.type`);
    const values = attr.enter(TAG_SET, `${f}.attribute.values`);
    attr.end();
    while (!values.atEnd()) values.any(`${f}.attribute.values`);
  }
}
