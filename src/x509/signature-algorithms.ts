import { MayflyError } from "../errors/index.js";
import type { HashName, KeySpec } from "../keys/keystore.js";
import { DER_NULL, oid, sequence } from "./der.js";
import { OID_ECDSA_WITH_SHA256, OID_ECDSA_WITH_SHA384, OID_SHA256_WITH_RSA } from "./oids.js";

/** How an issuer key of a given spec signs certificates. */
export interface IssuerAlgorithm {
  /** AlgorithmIdentifier DER, as it appears in tbsCertificate.signature and Certificate. */
  der: Buffer;
  hash: HashName;
  /** The same algorithm as @peculiar/x509 / WebCrypto name it. */
  webcrypto: { name: "ECDSA"; hash: "SHA-256" | "SHA-384" } | { name: "RSASSA-PKCS1-v1_5"; hash: "SHA-256" };
}

// ECDSA: hash matched to the curve (RFC 5480 §4) and no parameters (RFC 5758 §3.2;
// the tpm2-openssl NULL is accepted on input only). RSA: PKCS#1 v1.5 with SHA-256 and
// the NULL parameter RFC 4055 §5 requires.
const P256 = { der: sequence(oid(OID_ECDSA_WITH_SHA256)), hash: "sha256" } as const;
const P384 = { der: sequence(oid(OID_ECDSA_WITH_SHA384)), hash: "sha384" } as const;
const RSA = { der: sequence(oid(OID_SHA256_WITH_RSA), DER_NULL), hash: "sha256" } as const;

export function issuerAlgorithm(spec: KeySpec): IssuerAlgorithm {
  if (spec.kind === "ec" && spec.curve === "P-256")
    return { ...P256, webcrypto: { name: "ECDSA", hash: "SHA-256" } };
  if (spec.kind === "ec" && spec.curve === "P-384")
    return { ...P384, webcrypto: { name: "ECDSA", hash: "SHA-384" } };
  if (spec.kind === "rsa") return { ...RSA, webcrypto: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } };
  throw new MayflyError("key.unsupported", `no certificate signature algorithm for ${JSON.stringify(spec)}`);
}
