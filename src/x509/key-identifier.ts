import { createHash } from "node:crypto";
import { type ErrorCode, MayflyError } from "../errors/index.js";
import { TAG_SEQUENCE } from "./der.js";
import { DerReader } from "./der-reader.js";

/** The two halves of a SubjectPublicKeyInfo, structurally checked. */
export interface SpkiParts {
  /** AlgorithmIdentifier TLV. */
  algorithm: Buffer;
  /** The subjectPublicKey BIT STRING value (without the unused-bits octet). */
  publicKey: Buffer;
}

/** Splits SPKI DER; every octet must belong to it. */
export function splitSpki(spki: Buffer, code: ErrorCode, field: string): SpkiParts {
  const outer = new DerReader(spki, code, field);
  const r = outer.enter(TAG_SEQUENCE, field);
  outer.end();
  const algorithm = r.expect(TAG_SEQUENCE, `${field}.algorithm`).raw;
  const publicKey = r.octetAlignedBits(`${field}.subjectPublicKey`);
  r.end();
  return { algorithm, publicKey };
}

/**
 * RFC 5280 §4.2.1.2 method 1: SHA-1 over the subjectPublicKey BIT STRING value,
 * excluding tag, length and unused-bits octet. This is also what @peculiar/x509's
 * PublicKey.getKeyIdentifier and OpenSSL's "hash" compute, so the three agree.
 */
export function keyIdentifier(spki: Buffer): Buffer {
  let parts: SpkiParts;
  try {
    parts = splitSpki(spki, "certificate.profile_violation", "SubjectPublicKeyInfo");
  } catch (e) {
    if (e instanceof MayflyError) throw e;
    throw new MayflyError("certificate.profile_violation", "bad SubjectPublicKeyInfo", { cause: e });
  }
  return createHash("sha1").update(parts.publicKey).digest();
}
