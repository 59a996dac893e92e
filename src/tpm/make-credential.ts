import { createCipheriv, createHmac } from "node:crypto";
import type { Random } from "../runtime/clock.js";
import { TpmWriter } from "./buffer-writer.js";
import { MAX_DIGEST_BYTES, TPM_ALG, TPMA_OBJECT } from "./constants.js";
import { keyInvalid, malformed, unsupported } from "./errors.js";
import { hashAlgInfo } from "./hash-algs.js";
import { createIdentitySeed } from "./identity-seed.js";
import { kdfa } from "./kdf.js";
import { checkName } from "./name.js";
import type { TpmtPublic } from "./public.js";

// TPM2_MakeCredential done by the CA in software (Part 1 §24, Part 3 §12.6). Everything is
// keyed to the EK's own nameAlg and symmetric definition: a P-384 (H-3) EK means SHA-384 and
// AES-256-CFB, not the SHA-256/AES-128 of the common RSA template.

export interface MakeCredentialResult {
  /** TPM2B_ID_OBJECT with its u16 size, as tpm2_makecredential writes it. */
  readonly credentialBlob: Buffer;
  /** TPM2B_ENCRYPTED_SECRET with its u16 size. */
  readonly encryptedSecret: Buffer;
}

/** The symmetric half, with every intermediate value, so it can be checked against vectors. */
export interface ProtectedCredential {
  readonly symKey: Buffer;
  readonly hmacKey: Buffer;
  readonly encIdentity: Buffer;
  readonly outerHmac: Buffer;
  readonly credentialBlob: Buffer;
}

const SYM = "TPMT_PUBLIC.parameters.symmetric";

/** The EK must be what TPM2_MakeCredential accepts: an asymmetric restricted decryption key. */
function checkEk(ek: TpmtPublic): { cipher: string; keyBits: number } {
  const attrs = ek.objectAttributes;
  if (!(attrs & TPMA_OBJECT.restricted) || !(attrs & TPMA_OBJECT.decrypt)) {
    throw keyInvalid("TPMT_PUBLIC.objectAttributes", "the EK is not a restricted decryption key");
  }
  const s = ek.symmetric;
  if (s === null)
    throw keyInvalid(`${SYM}.algorithm`, "a restricted decryption key needs a symmetric algorithm");
  if (s.algorithm !== TPM_ALG.AES) throw unsupported(`${SYM}.algorithm`, s.algorithm);
  if (s.mode !== TPM_ALG.CFB) throw unsupported(`${SYM}.mode`, s.mode);
  return { cipher: `aes-${s.keyBits}-cfb`, keyBits: s.keyBits };
}

function checkInputs(ek: TpmtPublic, objectName: Uint8Array, credential: Uint8Array): void {
  checkName(objectName, "objectName");
  if (objectName.length === 0 || objectName.length === 4) throw malformed("objectName", "not an object Name");
  const max = Math.min(hashAlgInfo(ek.nameAlg, "TPMT_PUBLIC.nameAlg").size, MAX_DIGEST_BYTES);
  // Part 3: the credential may not be larger than the EK's nameAlg digest (TPM_RC_SIZE).
  if (credential.length < 1 || credential.length > max) {
    throw malformed("credential", `${credential.length} bytes; must be 1..${max}`);
  }
}

/**
 * symKey = KDFa(H, seed, "STORAGE", name, "", keyBits); hmacKey = KDFa(H, seed, "INTEGRITY",
 * "", "", |H|); encIdentity = AES-CFB(symKey, IV 0, TPM2B_DIGEST(credential));
 * outerHmac = HMAC_H(hmacKey, encIdentity || name); blob = TPM2B(TPM2B(outerHmac) || encIdentity).
 */
export function protectCredential(
  ek: TpmtPublic,
  seed: Uint8Array,
  objectName: Uint8Array,
  credential: Uint8Array,
): ProtectedCredential {
  const { cipher, keyBits } = checkEk(ek);
  checkInputs(ek, objectName, credential);
  const h = hashAlgInfo(ek.nameAlg, "TPMT_PUBLIC.nameAlg");
  const symKey = kdfa(ek.nameAlg, seed, "STORAGE", objectName, Buffer.alloc(0), keyBits);
  const hmacKey = kdfa(ek.nameAlg, seed, "INTEGRITY", Buffer.alloc(0), Buffer.alloc(0), h.size * 8);
  const plain = new TpmWriter().tpm2b(credential, "credential", MAX_DIGEST_BYTES).finish();
  const c = createCipheriv(cipher, symKey, Buffer.alloc(16));
  const encIdentity = Buffer.concat([c.update(plain), c.final()]);
  const outerHmac = createHmac(h.node, hmacKey).update(encIdentity).update(objectName).digest();
  const body = new TpmWriter()
    .tpm2b(outerHmac, "TPMS_ID_OBJECT.integrityHMAC", MAX_DIGEST_BYTES)
    .bytes(encIdentity);
  const credentialBlob = new TpmWriter().tpm2b(body.finish(), "TPM2B_ID_OBJECT", 0xffff).finish();
  return { symKey, hmacKey, encIdentity, outerHmac, credentialBlob };
}

/**
 * MakeCredential for `credential` (1..|H| bytes, e.g. a 32-byte activation secret) bound to
 * `objectName` (the AK Name the CA computed itself) under the EK `ek`. The seed and any ECC
 * ephemeral key come from `random`.
 */
export function makeCredential(
  ek: TpmtPublic,
  objectName: Uint8Array,
  credential: Uint8Array,
  random: Random,
): MakeCredentialResult {
  checkEk(ek);
  checkInputs(ek, objectName, credential);
  const { seed, secret } = createIdentitySeed(ek, random);
  const { credentialBlob } = protectCredential(ek, seed, objectName, credential);
  const encryptedSecret = new TpmWriter().tpm2b(secret, "TPM2B_ENCRYPTED_SECRET", 0xffff).finish();
  return { credentialBlob, encryptedSecret };
}
