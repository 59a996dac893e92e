import { TpmReader } from "./buffer-reader.js";
import { TpmWriter } from "./buffer-writer.js";
import { MAX_DATA_BYTES, MAX_DIGEST_BYTES, TPM_ST } from "./constants.js";
import { malformed, unsupported } from "./errors.js";
import { readName, writeName } from "./name.js";
import { type PcrSelection, readPcrSelection, writePcrSelection } from "./pcr.js";

// TPMS_ATTEST (Part 2 §10.12.12): the bytes a TPM signs for Certify, Quote and
// CertifyCreation. `magic` is returned as read, not checked: whether it equals
// TPM_GENERATED_VALUE is a verification fact for the caller (the evidence layer), like the
// signer and the nonce. The type must be known, because it decides the union's layout.

export interface ClockInfo {
  readonly clock: bigint;
  readonly resetCount: number;
  readonly restartCount: number;
  readonly safe: boolean;
}

export interface CertifyInfo {
  readonly name: Buffer;
  readonly qualifiedName: Buffer;
}

export interface QuoteInfo {
  readonly pcrSelect: PcrSelection[];
  readonly pcrDigest: Buffer;
}

export interface CreationInfo {
  readonly objectName: Buffer;
  readonly creationHash: Buffer;
}

interface AttestBase {
  readonly magic: number;
  readonly qualifiedSigner: Buffer;
  readonly extraData: Buffer;
  readonly clockInfo: ClockInfo;
  readonly firmwareVersion: bigint;
}

export type CertifyAttest = AttestBase & {
  readonly type: typeof TPM_ST.ATTEST_CERTIFY;
  readonly attested: CertifyInfo;
};
export type QuoteAttest = AttestBase & {
  readonly type: typeof TPM_ST.ATTEST_QUOTE;
  readonly attested: QuoteInfo;
};
export type CreationAttest = AttestBase & {
  readonly type: typeof TPM_ST.ATTEST_CREATION;
  readonly attested: CreationInfo;
};
export type TpmsAttest = CertifyAttest | QuoteAttest | CreationAttest;

const F = "TPMS_ATTEST";

function isSupportedType(t: number): t is TpmsAttest["type"] {
  return t === TPM_ST.ATTEST_CERTIFY || t === TPM_ST.ATTEST_QUOTE || t === TPM_ST.ATTEST_CREATION;
}

export function readAttest(r: TpmReader): TpmsAttest {
  const magic = r.u32(`${F}.magic`);
  const type = r.u16(`${F}.type`);
  if (!isSupportedType(type)) throw unsupported(`${F}.type`, type);
  const qualifiedSigner = readName(r, `${F}.qualifiedSigner`);
  const extraData = r.tpm2b(`${F}.extraData`, MAX_DATA_BYTES);
  const clock = r.u64(`${F}.clockInfo.clock`);
  const resetCount = r.u32(`${F}.clockInfo.resetCount`);
  const restartCount = r.u32(`${F}.clockInfo.restartCount`);
  const safeByte = r.u8(`${F}.clockInfo.safe`);
  if (safeByte > 1) throw malformed(`${F}.clockInfo.safe`, `${safeByte} is not a TPMI_YES_NO`);
  const clockInfo = { clock, resetCount, restartCount, safe: safeByte === 1 };
  const firmwareVersion = r.u64(`${F}.firmwareVersion`);
  const base = { magic, qualifiedSigner, extraData, clockInfo, firmwareVersion };
  const A = `${F}.attested`;
  switch (type) {
    case TPM_ST.ATTEST_CERTIFY: {
      const name = readName(r, `${A}.certify.name`);
      const qualifiedName = readName(r, `${A}.certify.qualifiedName`);
      return { ...base, type, attested: { name, qualifiedName } };
    }
    case TPM_ST.ATTEST_QUOTE: {
      const pcrSelect = readPcrSelection(r, `${A}.quote.pcrSelect`);
      const pcrDigest = r.tpm2b(`${A}.quote.pcrDigest`, MAX_DIGEST_BYTES);
      return { ...base, type, attested: { pcrSelect, pcrDigest } };
    }
    case TPM_ST.ATTEST_CREATION: {
      const objectName = readName(r, `${A}.creation.objectName`);
      const creationHash = r.tpm2b(`${A}.creation.creationHash`, MAX_DIGEST_BYTES);
      return { ...base, type, attested: { objectName, creationHash } };
    }
  }
}

export function writeAttest(w: TpmWriter, a: TpmsAttest): void {
  w.u32(a.magic, `${F}.magic`).u16(a.type, `${F}.type`);
  writeName(w, a.qualifiedSigner, `${F}.qualifiedSigner`);
  w.tpm2b(a.extraData, `${F}.extraData`, MAX_DATA_BYTES);
  w.u64(a.clockInfo.clock, `${F}.clockInfo.clock`)
    .u32(a.clockInfo.resetCount, `${F}.clockInfo.resetCount`)
    .u32(a.clockInfo.restartCount, `${F}.clockInfo.restartCount`)
    .u8(a.clockInfo.safe ? 1 : 0, `${F}.clockInfo.safe`)
    .u64(a.firmwareVersion, `${F}.firmwareVersion`);
  const A = `${F}.attested`;
  switch (a.type) {
    case TPM_ST.ATTEST_CERTIFY:
      writeName(w, a.attested.name, `${A}.certify.name`);
      writeName(w, a.attested.qualifiedName, `${A}.certify.qualifiedName`);
      return;
    case TPM_ST.ATTEST_QUOTE:
      writePcrSelection(w, a.attested.pcrSelect, `${A}.quote.pcrSelect`);
      w.tpm2b(a.attested.pcrDigest, `${A}.quote.pcrDigest`, MAX_DIGEST_BYTES);
      return;
    case TPM_ST.ATTEST_CREATION:
      writeName(w, a.attested.objectName, `${A}.creation.objectName`);
      w.tpm2b(a.attested.creationHash, `${A}.creation.creationHash`, MAX_DIGEST_BYTES);
      return;
  }
}

/** The bare signed bytes (`tpm2_quote -m`, `tpm2_certify -o`, WebAuthn certInfo). */
export function unmarshalAttest(bytes: Uint8Array): TpmsAttest {
  const r = new TpmReader(bytes);
  const a = readAttest(r);
  r.expectEnd(F);
  return a;
}

export function marshalAttest(a: TpmsAttest): Buffer {
  const w = new TpmWriter();
  writeAttest(w, a);
  return w.finish();
}
