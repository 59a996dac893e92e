import {
  constants,
  createDecipheriv,
  createECDH,
  createHmac,
  type KeyObject,
  privateDecrypt,
  timingSafeEqual,
} from "node:crypto";
import {
  eccCurveInfo,
  hashAlgInfo,
  kdfa,
  kdfe,
  TPM_ALG,
  TpmReader,
  type TpmtPublic,
} from "../../../src/tpm/index.js";

/**
 * TPM2_ActivateCredential in software, for tests only: what the TPM does with the EK's
 * private key (Part 3 §12.5). The CA never holds an EK private key, so this stays out of src.
 * Throws Error("integrity") where the TPM answers TPM_RC_INTEGRITY.
 */
export function activateCredentialSoftware(
  ek: TpmtPublic,
  ekPrivate: KeyObject,
  objectName: Uint8Array,
  credentialBlob: Uint8Array,
  encryptedSecret: Uint8Array,
): Buffer {
  const h = hashAlgInfo(ek.nameAlg, "nameAlg");
  const secretReader = new TpmReader(encryptedSecret);
  const secret = secretReader.tpm2b("TPM2B_ENCRYPTED_SECRET", 0xffff);
  secretReader.expectEnd("TPM2B_ENCRYPTED_SECRET");
  let seed: Buffer;
  if (ek.type === TPM_ALG.RSA) {
    seed = privateDecrypt(
      {
        key: ekPrivate,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: h.node,
        oaepLabel: Buffer.from("IDENTITY\0"),
      },
      secret,
    );
  } else {
    const c = eccCurveInfo(ek.curveId);
    const p = new TpmReader(secret);
    const qx = p.tpm2b("x", c.bytes);
    const qy = p.tpm2b("y", c.bytes);
    p.expectEnd("TPMS_ECC_POINT");
    const ecdh = createECDH(c.node);
    ecdh.setPrivateKey(Buffer.from(ekPrivate.export({ format: "jwk" }).d ?? "", "base64url"));
    const z = ecdh.computeSecret(Buffer.concat([Buffer.from([4]), qx, qy]));
    seed = kdfe(ek.nameAlg, z, "IDENTITY", qx, ek.unique.x, h.size * 8);
  }
  const blobReader = new TpmReader(credentialBlob);
  const body = new TpmReader(blobReader.tpm2b("TPM2B_ID_OBJECT", 0xffff));
  blobReader.expectEnd("TPM2B_ID_OBJECT");
  const integrity = body.tpm2b("integrityHMAC", 64);
  const encIdentity = body.bytes(body.remaining, "encIdentity");
  const hmacKey = kdfa(ek.nameAlg, seed, "INTEGRITY", Buffer.alloc(0), Buffer.alloc(0), h.size * 8);
  const expected = createHmac(h.node, hmacKey).update(encIdentity).update(objectName).digest();
  if (integrity.length !== expected.length || !timingSafeEqual(integrity, expected))
    throw new Error("integrity");
  const keyBits = ek.symmetric?.keyBits ?? 0;
  const symKey = kdfa(ek.nameAlg, seed, "STORAGE", objectName, Buffer.alloc(0), keyBits);
  const d = createDecipheriv(`aes-${keyBits}-cfb`, symKey, Buffer.alloc(16));
  const plain = new TpmReader(Buffer.concat([d.update(encIdentity), d.final()]));
  const credential = plain.tpm2b("credential", 64);
  plain.expectEnd("credential");
  return credential;
}
