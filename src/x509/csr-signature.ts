import { constants, type KeyObject, verify } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import { contextTag, TAG_NULL, TAG_SEQUENCE } from "./der.js";
import type { DerReader } from "./der-reader.js";
import {
  OID_ECDSA_WITH_SHA1,
  OID_ECDSA_WITH_SHA256,
  OID_ECDSA_WITH_SHA384,
  OID_ECDSA_WITH_SHA512,
  OID_MD5_WITH_RSA,
  OID_MGF1,
  OID_RSASSA_PSS,
  OID_SHA1,
  OID_SHA1_WITH_RSA,
  OID_SHA256,
  OID_SHA256_WITH_RSA,
  OID_SHA384,
  OID_SHA384_WITH_RSA,
  OID_SHA512,
  OID_SHA512_WITH_RSA,
} from "./oids.js";

// CSR signature algorithms. Accepted: ECDSA with SHA-256/384, RSA PKCS#1 v1.5 with
// SHA-256/384/512, RSASSA-PSS with SHA-256/384/512 (MGF1 over the same hash).
// SHA-1, MD5 and anything unknown are refused as csr.key_unsupported: the request is
// well-formed, Mayfly just will not accept that strength (same code as a weak key).

export type CsrSignatureAlgorithm =
  | { kind: "ecdsa"; hash: "sha256" | "sha384"; name: string }
  | { kind: "rsa-pkcs1"; hash: "sha256" | "sha384" | "sha512"; name: string }
  | { kind: "rsa-pss"; hash: "sha256" | "sha384" | "sha512"; saltLength: number; name: string };

const ECDSA: Record<string, "sha256" | "sha384"> = {
  [OID_ECDSA_WITH_SHA256]: "sha256",
  [OID_ECDSA_WITH_SHA384]: "sha384",
};
const RSA: Record<string, "sha256" | "sha384" | "sha512"> = {
  [OID_SHA256_WITH_RSA]: "sha256",
  [OID_SHA384_WITH_RSA]: "sha384",
  [OID_SHA512_WITH_RSA]: "sha512",
};
const HASHES: Record<string, "sha256" | "sha384" | "sha512"> = {
  [OID_SHA256]: "sha256",
  [OID_SHA384]: "sha384",
  [OID_SHA512]: "sha512",
};
const REFUSED: Record<string, string> = {
  [OID_ECDSA_WITH_SHA1]: "ecdsa-with-SHA1",
  [OID_SHA1_WITH_RSA]: "sha1WithRSAEncryption",
  [OID_MD5_WITH_RSA]: "md5WithRSAEncryption",
  [OID_ECDSA_WITH_SHA512]: "ecdsa-with-SHA512",
};

const FIELD = "CertificationRequest.signatureAlgorithm";

function unsupported(detail: string, field = FIELD): MayflyError {
  return new MayflyError("csr.key_unsupported", detail, { field });
}

/** Absent or NULL parameters; anything else is malformed. */
function nullOrAbsent(r: DerReader, field: string): void {
  if (r.atEnd()) return;
  const p = r.expect(TAG_NULL, field);
  if (p.content.length !== 0) r.fail(field, `${field} is not NULL`);
  r.end();
}

/** Reads the AlgorithmIdentifier TLV content of a CSR signature. */
export function readCsrSignatureAlgorithm(alg: DerReader): CsrSignatureAlgorithm {
  const id = alg.oid(`${FIELD}.algorithm`);
  const ecdsaHash = ECDSA[id];
  if (ecdsaHash) {
    // RFC 5758 §3.2 says omit the parameters; tpm2-openssl 1.1.1 writes NULL (DESIGN.md quirk).
    nullOrAbsent(alg, `${FIELD}.parameters`);
    return { kind: "ecdsa", hash: ecdsaHash, name: `ecdsa-with-${ecdsaHash.toUpperCase()}` };
  }
  const rsaHash = RSA[id];
  if (rsaHash) {
    // RFC 4055 §5: parameters MUST be NULL, and implementations MUST accept them absent.
    nullOrAbsent(alg, `${FIELD}.parameters`);
    return { kind: "rsa-pkcs1", hash: rsaHash, name: `${rsaHash}WithRSAEncryption` };
  }
  if (id === OID_RSASSA_PSS) return readPssParams(alg);
  const refused = REFUSED[id];
  if (refused) throw unsupported(`signature algorithm ${refused} is not allowed`);
  throw unsupported(`signature algorithm ${id} is not supported`);
}

// RSASSA-PSS-params (RFC 4055 §3.1). Every field has a SHA-1 default, so a hash must
// be given explicitly; the trailer field must be the default (absent in DER).
function readPssParams(alg: DerReader): CsrSignatureAlgorithm {
  const f = `${FIELD}.parameters`;
  const p = alg.enter(TAG_SEQUENCE, f);
  alg.end();
  const hashTlv = p.optional(contextTag(0, true), `${f}.hashAlgorithm`);
  const mgfTlv = p.optional(contextTag(1, true), `${f}.maskGenAlgorithm`);
  const saltTlv = p.optional(contextTag(2, true), `${f}.saltLength`);
  const trailerTlv = p.optional(contextTag(3, true), `${f}.trailerField`);
  p.end();
  if (trailerTlv) p.fail(`${f}.trailerField`, "trailerField must be absent (default 1)");
  if (!hashTlv) throw unsupported("RSASSA-PSS with SHA-1 is not allowed", `${f}.hashAlgorithm`);
  const hash = readHash(p.child(hashTlv, `${f}.hashAlgorithm`), `${f}.hashAlgorithm`);
  if (!mgfTlv) throw unsupported("RSASSA-PSS with MGF1-SHA-1 is not allowed", `${f}.maskGenAlgorithm`);
  const mgfOuter = p.child(mgfTlv, `${f}.maskGenAlgorithm`);
  const mgf = mgfOuter.enter(TAG_SEQUENCE, `${f}.maskGenAlgorithm`);
  mgfOuter.end();
  if (mgf.oid(`${f}.maskGenAlgorithm.algorithm`) !== OID_MGF1) {
    throw unsupported("RSASSA-PSS mask generation other than MGF1", `${f}.maskGenAlgorithm`);
  }
  const mgfHash = readHash(mgf, `${f}.maskGenAlgorithm.parameters`);
  if (mgfHash !== hash)
    throw unsupported("RSASSA-PSS with MGF1 over a different hash", `${f}.maskGenAlgorithm`);
  let saltLength = 20;
  if (saltTlv) {
    const s = p.child(saltTlv, `${f}.saltLength`);
    saltLength = s.smallInteger(`${f}.saltLength`);
    s.end();
  }
  return { kind: "rsa-pss", hash, saltLength, name: `RSASSA-PSS-${hash.toUpperCase()}` };
}

/** A [n]-wrapped or bare AlgorithmIdentifier naming SHA-256/384/512. */
function readHash(r: DerReader, field: string): "sha256" | "sha384" | "sha512" {
  const a = r.enter(TAG_SEQUENCE, field);
  r.end();
  const id = a.oid(`${field}.algorithm`);
  nullOrAbsent(a, `${field}.parameters`);
  if (id === OID_SHA1) throw unsupported("RSASSA-PSS with SHA-1 is not allowed", field);
  const h = HASHES[id];
  if (!h) throw unsupported(`hash ${id} is not supported`, field);
  return h;
}

/** Verifies a CSR signature over the exact CertificationRequestInfo octets. */
export function verifyCsrSignature(
  alg: CsrSignatureAlgorithm,
  key: KeyObject,
  signed: Buffer,
  signature: Buffer,
): boolean {
  try {
    if (alg.kind === "ecdsa") return verify(alg.hash, signed, { key, dsaEncoding: "der" }, signature);
    if (alg.kind === "rsa-pkcs1")
      return verify(alg.hash, signed, { key, padding: constants.RSA_PKCS1_PADDING }, signature);
    return verify(
      alg.hash,
      signed,
      { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: alg.saltLength },
      signature,
    );
  } catch {
    return false;
  }
}
