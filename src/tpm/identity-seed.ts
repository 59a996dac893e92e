import { constants, createECDH, publicEncrypt } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import type { Random } from "../runtime/clock.js";
import { TpmWriter } from "./buffer-writer.js";
import { TPM_ALG, TPM_ECC_CURVE } from "./constants.js";
import { keyInvalid } from "./errors.js";
import { hashAlgInfo } from "./hash-algs.js";
import { kdfe } from "./kdf.js";
import type { EccPublic, RsaPublic, TpmtPublic } from "./public.js";
import { eccCurveInfo, padTo, publicKeyObject } from "./public-key.js";

// The seed half of MakeCredential (Part 1 Annex B.10.4 and C.6.4, label "IDENTITY"): a secret
// seed only the EK's private key can recover, and what to send so the TPM can recover it.

export interface IdentitySeed {
  /** |H_nameAlg| bytes; everything else is derived from it. */
  readonly seed: Buffer;
  /** TPMU_ENCRYPTED_SECRET contents (no size): the OAEP ciphertext or TPMS_ECC_POINT Q_e. */
  readonly secret: Buffer;
}

const LABEL = "IDENTITY";
const MAX_SCALAR_TRIES = 16;

/**
 * RSA: seed = random(|H|), secret = RSAES-OAEP(EK, H, label "IDENTITY\0"). The seed comes from
 * `random`; OAEP's own padding randomness comes from OpenSSL, which node:crypto does not let us
 * inject, so the ciphertext is not reproducible (the seed is).
 */
function rsaSeed(ek: RsaPublic, random: Random): IdentitySeed {
  const h = hashAlgInfo(ek.nameAlg, "TPMT_PUBLIC.nameAlg");
  const seed = random.bytes(h.size);
  const secret = publicEncrypt(
    {
      key: publicKeyObject(ek),
      padding: constants.RSA_PKCS1_OAEP_PADDING,
      oaepHash: h.node,
      oaepLabel: Buffer.from(`${LABEL}\0`, "latin1"),
    },
    seed,
  );
  return { seed, secret };
}

/**
 * ECC: one-pass ECDH with an ephemeral key on the EK's curve; seed = KDFe(H, Z, "IDENTITY",
 * Q_e.x, Q_ek.x). The ephemeral scalar is drawn from `random` (rejection-sampled into
 * [1, n-1] by OpenSSL's range check), so a test can replay a known ephemeral key.
 */
function eccSeed(ek: EccPublic, random: Random): IdentitySeed {
  const c = eccCurveInfo(ek.curveId);
  const h = hashAlgInfo(ek.nameAlg, "TPMT_PUBLIC.nameAlg");
  publicKeyObject(ek); // refuses a point off the curve (TPM_RC_KEY) with the field named
  const ekX = padTo(ek.unique.x, c.bytes, "TPMT_PUBLIC.unique.ecc.x");
  const ekY = padTo(ek.unique.y, c.bytes, "TPMT_PUBLIC.unique.ecc.y");
  const ecdh = createECDH(c.node);
  for (let i = 0; ; i++) {
    if (i === MAX_SCALAR_TRIES) {
      throw new MayflyError("internal.error", "the random source gave no valid ECC scalar");
    }
    const d = random.bytes(c.bytes);
    // P-521's order has 521 bits: clear the excess top bits so most draws are in range.
    if (c.curveId === TPM_ECC_CURVE.NIST_P521) d[0]! &= 0x01;
    try {
      ecdh.setPrivateKey(d);
      break;
    } catch {
      // out of range (zero or >= n): draw again
    }
  }
  let z: Buffer;
  try {
    z = ecdh.computeSecret(Buffer.concat([Buffer.from([4]), ekX, ekY]));
  } catch (cause) {
    throw keyInvalid("TPMT_PUBLIC.unique.ecc", "ECDH with the EK point failed", cause);
  }
  const q = ecdh.getPublicKey();
  const qx = q.subarray(1, 1 + c.bytes);
  const qy = q.subarray(1 + c.bytes);
  const seed = kdfe(ek.nameAlg, z, LABEL, qx, ekX, h.size * 8);
  const secret = new TpmWriter()
    .tpm2b(qx, "TPMS_ECC_POINT.x", c.bytes)
    .tpm2b(qy, "TPMS_ECC_POINT.y", c.bytes)
    .finish();
  return { seed, secret };
}

export function createIdentitySeed(ek: TpmtPublic, random: Random): IdentitySeed {
  return ek.type === TPM_ALG.RSA ? rsaSeed(ek, random) : eccSeed(ek, random);
}
