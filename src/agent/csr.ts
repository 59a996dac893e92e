import { createHash, createPublicKey, type KeyObject, sign as signSoftware } from "node:crypto";
import type { TpmClient } from "../tpm/client/index.js";
import { TPM_ALG, type TpmtPublic } from "../tpm/index.js";
import {
  bitString,
  contextTag,
  DER_NULL,
  integerFromUnsigned,
  integerSmall,
  oid,
  sequence,
  TAG_SET,
  tlv,
  utf8String,
} from "../x509/der.js";
import { AGENT_CODES, AgentError } from "./errors.js";

// PKCS#10 (RFC 2986) for an agent key. The signature comes from a callback, so the key can sign
// inside the TPM (TPM2_Sign over the digest of CertificationRequestInfo) or in software. No
// attributes: the CA decides every certificate field itself. ecdsa-with-SHA* carry no
// parameters (RFC 5758 §3.2); sha256WithRSAEncryption carries NULL (RFC 4055 §5).

export type CsrHash = "sha256" | "sha384";

export interface CsrAlgorithm {
  readonly kind: "ecdsa" | "rsa";
  readonly hash: CsrHash;
  /** The signatureAlgorithm OID. */
  readonly oid: string;
}

/**
 * Signs the DER CertificationRequestInfo (`tbs`) with `alg.hash`; returns the signature as the
 * CSR's BIT STRING holds it: ECDSA-Sig-Value DER, or the RSASSA-PKCS1-v1_5 signature octets.
 */
export type CsrSigner = (tbs: Buffer, alg: CsrAlgorithm) => Promise<Buffer>;

const ALGS = {
  p256: { kind: "ecdsa", hash: "sha256", oid: "1.2.840.10045.4.3.2" },
  p384: { kind: "ecdsa", hash: "sha384", oid: "1.2.840.10045.4.3.3" },
  rsa: { kind: "rsa", hash: "sha256", oid: "1.2.840.113549.1.1.11" },
} as const satisfies Record<string, CsrAlgorithm>;

/** The CSR signature algorithm for a key: P-256 -> ECDSA-SHA256, P-384 -> ECDSA-SHA384, RSA -> SHA256withRSA. */
export function csrAlgorithm(spki: Buffer): CsrAlgorithm {
  let key: KeyObject;
  try {
    key = createPublicKey({ key: spki, format: "der", type: "spki" });
  } catch (cause) {
    throw new AgentError(AGENT_CODES.keyUnsupported, "the SubjectPublicKeyInfo does not parse", { cause });
  }
  if (key.asymmetricKeyType === "rsa") return ALGS.rsa;
  if (key.asymmetricKeyType === "ec") {
    const curve = key.asymmetricKeyDetails?.namedCurve;
    if (curve === "prime256v1") return ALGS.p256;
    if (curve === "secp384r1") return ALGS.p384;
  }
  throw new AgentError(
    AGENT_CODES.keyUnsupported,
    `a ${key.asymmetricKeyType} key (${key.asymmetricKeyDetails?.namedCurve ?? "no curve"}) cannot be put in a Mayfly CSR`,
  );
}

/** A Name with one RDN holding one commonName (UTF8String). */
export function commonNameSubject(cn: string): Buffer {
  return sequence(tlv(TAG_SET, sequence(oid("2.5.4.3"), utf8String(cn))));
}

const EMPTY_NAME = sequence();

export interface CsrOptions {
  /** SubjectPublicKeyInfo DER of the key being certified. */
  readonly spki: Buffer;
  /** DER Name; default the empty Name (the CA ignores the subject). */
  readonly subject?: Buffer;
  readonly sign: CsrSigner;
}

/** The DER CertificationRequestInfo: version 0, subject, SPKI, no attributes. */
export function certificationRequestInfo(spki: Buffer, subject: Buffer = EMPTY_NAME): Buffer {
  return sequence(integerSmall(0), subject, spki, tlv(contextTag(0, true), []));
}

export async function buildCsr(o: CsrOptions): Promise<Buffer> {
  const alg = csrAlgorithm(o.spki);
  const tbs = certificationRequestInfo(o.spki, o.subject);
  const signature = await o.sign(tbs, alg);
  const algId = alg.kind === "rsa" ? sequence(oid(alg.oid), DER_NULL) : sequence(oid(alg.oid));
  return sequence(tbs, algId, bitString(signature));
}

/** ECDSA-Sig-Value ::= SEQUENCE { r INTEGER, s INTEGER } from the unsigned big-endian r and s. */
export function ecdsaSignatureDer(r: Uint8Array, s: Uint8Array): Buffer {
  return sequence(integerFromUnsigned(r), integerFromUnsigned(s));
}

/** A software key signs (node:crypto; ECDSA in DER, RSA PKCS#1 v1.5). */
export function softwareCsrSigner(privateKey: KeyObject): CsrSigner {
  return async (tbs, alg) => signSoftware(alg.hash, tbs, privateKey);
}

const TPM_HASH: Record<CsrHash, number> = { sha256: TPM_ALG.SHA256, sha384: TPM_ALG.SHA384 };

/**
 * A TPM key signs: the digest of `tbs` is computed here and signed with TPM2_Sign (an
 * unrestricted key needs no hash ticket); the TPMT_SIGNATURE becomes the CSR's signature.
 */
export function tpmCsrSigner(tpm: TpmClient, keyHandle: number, keyPublic: TpmtPublic): CsrSigner {
  return async (tbs, alg) => {
    const hashAlg = TPM_HASH[alg.hash];
    const isRsa = keyPublic.type === TPM_ALG.RSA;
    if (isRsa !== (alg.kind === "rsa")) {
      throw new AgentError(AGENT_CODES.keyUnsupported, `the TPM key cannot make an ${alg.kind} signature`);
    }
    const digest = createHash(alg.hash).update(tbs).digest();
    const scheme = { scheme: isRsa ? TPM_ALG.RSASSA : TPM_ALG.ECDSA, hashAlg };
    const { signature } = await tpm.sign(keyHandle, digest, { scheme });
    if (signature.hashAlg !== hashAlg) {
      throw new AgentError(
        AGENT_CODES.keyUnsupported,
        `the TPM signed with hash 0x${signature.hashAlg.toString(16)}`,
      );
    }
    if (signature.sigAlg === TPM_ALG.ECDSA)
      return ecdsaSignatureDer(signature.signatureR, signature.signatureS);
    if (signature.sigAlg === TPM_ALG.RSASSA) return signature.sig;
    throw new AgentError(
      AGENT_CODES.keyUnsupported,
      `the TPM signed with scheme 0x${signature.sigAlg.toString(16)}`,
    );
  };
}
