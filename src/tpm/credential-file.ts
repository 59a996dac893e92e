import { TpmReader } from "./buffer-reader.js";
import { TpmWriter } from "./buffer-writer.js";
import { MAX_RSA_KEY_BYTES } from "./constants.js";
import { malformed } from "./errors.js";
import type { MakeCredentialResult } from "./make-credential.js";

// The file tpm2_makecredential writes and tpm2_activatecredential -i reads (tpm2-tools 5.x):
// BADCC0DE || u32 version 1 || TPM2B_ID_OBJECT || TPM2B_ENCRYPTED_SECRET. Agents that drive
// tpm2-tools, and the live tests, need exactly this layout.

const MAGIC = 0xbadcc0de;
const VERSION = 1;
const F = "tpm2-tools credential";
/** sizeof(TPMS_ID_OBJECT) with a 64-byte HMAC and a 64-byte credential. */
const MAX_ID_OBJECT_BYTES = 2 + 64 + 2 + 64;

export function encodeTpm2ToolsCredential(c: MakeCredentialResult): Buffer {
  return new TpmWriter()
    .u32(MAGIC, `${F}.magic`)
    .u32(VERSION, `${F}.version`)
    .bytes(c.credentialBlob)
    .bytes(c.encryptedSecret)
    .finish();
}

export function decodeTpm2ToolsCredential(bytes: Uint8Array): MakeCredentialResult {
  const r = new TpmReader(bytes);
  const magic = r.u32(`${F}.magic`);
  if (magic !== MAGIC) throw malformed(`${F}.magic`, `0x${magic.toString(16)} is not 0xbadcc0de`);
  const version = r.u32(`${F}.version`);
  if (version !== VERSION) throw malformed(`${F}.version`, `${version} is not 1`);
  const id = r.tpm2b("TPM2B_ID_OBJECT", MAX_ID_OBJECT_BYTES);
  const secret = r.tpm2b("TPM2B_ENCRYPTED_SECRET", MAX_RSA_KEY_BYTES);
  r.expectEnd(F);
  const wrap = (b: Buffer, f: string, max: number) => new TpmWriter().tpm2b(b, f, max).finish();
  return {
    credentialBlob: wrap(id, "TPM2B_ID_OBJECT", MAX_ID_OBJECT_BYTES),
    encryptedSecret: wrap(secret, "TPM2B_ENCRYPTED_SECRET", MAX_RSA_KEY_BYTES),
  };
}
