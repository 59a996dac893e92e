import { constants, type KeyObject, verify } from "node:crypto";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate } from "@peculiar/asn1-x509";
import { OID_ECDSA_WITH_SHA256, OID_ECDSA_WITH_SHA384, OID_SHA256_WITH_RSA } from "./oids.js";
import "./asn1js-oid-fix.js"; // before any parse: see the file

// Verifying what Mayfly just signed, through @peculiar/asn1-x509's parser (not the
// hand encoder's own reader) and node:crypto (not the signer): a signer returning
// garbage, or a key mix-up between issuer certificate and signer, is caught here.

const ISSUED_ALGORITHMS: Record<string, { kind: "ec" | "rsa"; hash: string }> = {
  [OID_ECDSA_WITH_SHA256]: { kind: "ec", hash: "sha256" },
  [OID_ECDSA_WITH_SHA384]: { kind: "ec", hash: "sha384" },
  [OID_SHA256_WITH_RSA]: { kind: "rsa", hash: "sha256" },
};

export interface ParsedCertificate {
  asn: Certificate;
  tbs: Buffer;
  signature: Buffer;
}

export function parseCertificate(der: Buffer): ParsedCertificate {
  const asn = AsnConvert.parse(der, Certificate);
  if (!asn.tbsCertificateRaw) throw new Error("asn1-x509 kept no raw TBSCertificate");
  return { asn, tbs: Buffer.from(asn.tbsCertificateRaw), signature: Buffer.from(asn.signatureValue) };
}

/** True when `cert` is signed by `issuerKey` with one of the algorithms Mayfly issues with. */
export function verifyIssuedSignature(cert: ParsedCertificate, issuerKey: KeyObject): boolean {
  const alg = ISSUED_ALGORITHMS[cert.asn.signatureAlgorithm.algorithm];
  if (!alg) return false;
  if ((alg.kind === "ec") !== (issuerKey.asymmetricKeyType === "ec")) return false;
  const key =
    alg.kind === "ec"
      ? { key: issuerKey, dsaEncoding: "der" as const }
      : { key: issuerKey, padding: constants.RSA_PKCS1_PADDING };
  try {
    return verify(alg.hash, cert.tbs, key, cert.signature);
  } catch {
    return false;
  }
}
