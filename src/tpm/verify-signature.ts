import { constants, type KeyObject, verify } from "node:crypto";
import { TPM_ALG } from "./constants.js";
import { hashAlgInfo } from "./hash-algs.js";
import type { TpmtPublic } from "./public.js";
import { publicKeyObject } from "./public-key.js";
import type { TpmtSignature } from "./signature.js";

// Signature verification returns a fact (true/false). The hash is the signature's own
// hashAlg, which may be SHA-1 on real Windows TPMs: callers refuse it with isHashAlgAllowed.

const CURVE_BYTES: Readonly<Record<string, number>> = { prime256v1: 32, secp384r1: 48, secp521r1: 66 };

/** r or s left-padded to the field size; null when it cannot be a valid scalar for the curve. */
function fieldElement(v: Buffer, size: number): Buffer | null {
  let x = v;
  while (x.length > size && x[0] === 0) x = x.subarray(1);
  if (x.length > size) return null;
  return Buffer.concat([Buffer.alloc(size - x.length), x]);
}

/**
 * Verifies a TPM signature over `message` (the signed bytes, e.g. a marshalled TPMS_ATTEST;
 * it is hashed here with the signature's hashAlg). Throws only for a public area that does
 * not hold a usable key (tpm.key_invalid) or an unknown hash; a mismatched key type, a wrong
 * size or a bad signature is `false`.
 */
export function verifyTpmSignature(
  sig: TpmtSignature,
  message: Uint8Array,
  key: TpmtPublic | KeyObject,
): boolean {
  const keyObject = "nameAlg" in key ? publicKeyObject(key) : key;
  const hash = hashAlgInfo(sig.hashAlg, "TPMT_SIGNATURE.signature.hash").node;
  try {
    if (sig.sigAlg === TPM_ALG.ECDSA) {
      if (keyObject.asymmetricKeyType !== "ec") return false;
      const size = CURVE_BYTES[keyObject.asymmetricKeyDetails?.namedCurve ?? ""];
      if (size === undefined) return false;
      const r = fieldElement(sig.signatureR, size);
      const s = fieldElement(sig.signatureS, size);
      if (!r || !s) return false;
      return verify(hash, message, { key: keyObject, dsaEncoding: "ieee-p1363" }, Buffer.concat([r, s]));
    }
    if (keyObject.asymmetricKeyType !== "rsa") return false;
    if (sig.sigAlg === TPM_ALG.RSASSA) {
      return verify(hash, message, { key: keyObject, padding: constants.RSA_PKCS1_PADDING }, sig.sig);
    }
    // TPMs use a salt as long as the digest (or shorter for small keys): accept any length.
    const opts = {
      key: keyObject,
      padding: constants.RSA_PKCS1_PSS_PADDING,
      saltLength: constants.RSA_PSS_SALTLEN_AUTO,
    };
    return verify(hash, message, opts, sig.sig);
  } catch {
    // OpenSSL throws on some malformed signatures (e.g. wrong length); that is "does not verify".
    return false;
  }
}
