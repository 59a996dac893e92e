import { TpmReader } from "./buffer-reader.js";
import { TpmWriter } from "./buffer-writer.js";
import { MAX_ECC_KEY_BYTES, MAX_RSA_KEY_BYTES, TPM_ALG } from "./constants.js";
import { unsupported } from "./errors.js";
import { readHashAlg } from "./public-params.js";

// TPMT_SIGNATURE (Part 2 §11.3.4) for the schemes an AK uses: RSASSA, RSAPSS and ECDSA.
// Other schemes (ECDAA, SM2, Schnorr, HMAC) are reported as unsupported, not half-parsed.

export interface RsaSignature {
  readonly sigAlg: typeof TPM_ALG.RSASSA | typeof TPM_ALG.RSAPSS;
  readonly hashAlg: number;
  readonly sig: Buffer;
}

export interface EcdsaSignature {
  readonly sigAlg: typeof TPM_ALG.ECDSA;
  readonly hashAlg: number;
  readonly signatureR: Buffer;
  readonly signatureS: Buffer;
}

export type TpmtSignature = RsaSignature | EcdsaSignature;

const F = "TPMT_SIGNATURE";

export function readSignature(r: TpmReader): TpmtSignature {
  const sigAlg = r.u16(`${F}.sigAlg`);
  if (sigAlg === TPM_ALG.RSASSA || sigAlg === TPM_ALG.RSAPSS) {
    const u = `${F}.signature.${sigAlg === TPM_ALG.RSASSA ? "rsassa" : "rsapss"}`;
    const hashAlg = readHashAlg(r, `${u}.hash`);
    return { sigAlg, hashAlg, sig: r.tpm2b(`${u}.sig`, MAX_RSA_KEY_BYTES) };
  }
  if (sigAlg === TPM_ALG.ECDSA) {
    const u = `${F}.signature.ecdsa`;
    const hashAlg = readHashAlg(r, `${u}.hash`);
    const signatureR = r.tpm2b(`${u}.signatureR`, MAX_ECC_KEY_BYTES);
    const signatureS = r.tpm2b(`${u}.signatureS`, MAX_ECC_KEY_BYTES);
    return { sigAlg, hashAlg, signatureR, signatureS };
  }
  throw unsupported(`${F}.sigAlg`, sigAlg);
}

export function writeSignature(w: TpmWriter, s: TpmtSignature): void {
  w.u16(s.sigAlg, `${F}.sigAlg`);
  if (s.sigAlg === TPM_ALG.ECDSA) {
    const u = `${F}.signature.ecdsa`;
    w.u16(s.hashAlg, `${u}.hash`);
    w.tpm2b(s.signatureR, `${u}.signatureR`, MAX_ECC_KEY_BYTES).tpm2b(
      s.signatureS,
      `${u}.signatureS`,
      MAX_ECC_KEY_BYTES,
    );
    return;
  }
  const u = `${F}.signature.${s.sigAlg === TPM_ALG.RSASSA ? "rsassa" : "rsapss"}`;
  w.u16(s.hashAlg, `${u}.hash`).tpm2b(s.sig, `${u}.sig`, MAX_RSA_KEY_BYTES);
}

export function unmarshalSignature(bytes: Uint8Array): TpmtSignature {
  const r = new TpmReader(bytes);
  const s = readSignature(r);
  r.expectEnd(F);
  return s;
}

export function marshalSignature(s: TpmtSignature): Buffer {
  const w = new TpmWriter();
  writeSignature(w, s);
  return w.finish();
}
