import { createHash, timingSafeEqual } from "node:crypto";

/**
 * The value every attestation must carry in its signed extraData: it ties the
 * evidence to this challenge (freshness) and to this CSR key (no key swap).
 */
export function bindingDigest(nonce: Buffer, spki: Buffer): Buffer {
  return createHash("sha256").update(nonce).update(spki).digest();
}

export function matchesBinding(extraData: Buffer, nonce: Buffer, spki: Buffer): boolean {
  const want = bindingDigest(nonce, spki);
  return extraData.length === want.length && timingSafeEqual(extraData, want);
}
