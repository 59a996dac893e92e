import { TpmReader } from "./buffer-reader.js";
import { TpmWriter } from "./buffer-writer.js";
import { MAX_DATA_BYTES, MAX_DIGEST_BYTES, TPM_ALG } from "./constants.js";
import { unsupported } from "./errors.js";
import { isHashAlg } from "./hash-algs.js";
import { readName, writeName } from "./name.js";
import { type PcrSelection, readPcrSelection, writePcrSelection } from "./pcr.js";

// TPMS_CREATION_DATA (Part 2 §15.1): what TPM2_Create/CreatePrimary record about a key's
// birth. A creation attestation's creationHash is H(these bytes), so they must round-trip.

export interface CreationData {
  readonly pcrSelect: PcrSelection[];
  readonly pcrDigest: Buffer;
  readonly locality: number;
  /** TPM_ALG_NULL when the parent is a hierarchy (parentName is then its handle). */
  readonly parentNameAlg: number;
  readonly parentName: Buffer;
  readonly parentQualifiedName: Buffer;
  readonly outsideInfo: Buffer;
}

const F = "TPMS_CREATION_DATA";
const MAX_CREATION_DATA_BYTES = 1024;

export function readCreationData(r: TpmReader): CreationData {
  const pcrSelect = readPcrSelection(r, `${F}.pcrSelect`);
  const pcrDigest = r.tpm2b(`${F}.pcrDigest`, MAX_DIGEST_BYTES);
  const locality = r.u8(`${F}.locality`);
  const parentNameAlg = r.u16(`${F}.parentNameAlg`);
  if (parentNameAlg !== TPM_ALG.NULL && !isHashAlg(parentNameAlg)) {
    throw unsupported(`${F}.parentNameAlg`, parentNameAlg);
  }
  const parentName = readName(r, `${F}.parentName`);
  const parentQualifiedName = readName(r, `${F}.parentQualifiedName`);
  const outsideInfo = r.tpm2b(`${F}.outsideInfo`, MAX_DATA_BYTES);
  return { pcrSelect, pcrDigest, locality, parentNameAlg, parentName, parentQualifiedName, outsideInfo };
}

export function writeCreationData(w: TpmWriter, c: CreationData): void {
  writePcrSelection(w, c.pcrSelect, `${F}.pcrSelect`);
  w.tpm2b(c.pcrDigest, `${F}.pcrDigest`, MAX_DIGEST_BYTES);
  w.u8(c.locality, `${F}.locality`).u16(c.parentNameAlg, `${F}.parentNameAlg`);
  writeName(w, c.parentName, `${F}.parentName`);
  writeName(w, c.parentQualifiedName, `${F}.parentQualifiedName`);
  w.tpm2b(c.outsideInfo, `${F}.outsideInfo`, MAX_DATA_BYTES);
}

export function unmarshalCreationData(bytes: Uint8Array): CreationData {
  const r = new TpmReader(bytes);
  const c = readCreationData(r);
  r.expectEnd(F);
  return c;
}

export function marshalCreationData(c: CreationData): Buffer {
  const w = new TpmWriter();
  writeCreationData(w, c);
  return w.finish();
}

/** TPM2B_CREATION_DATA (`tpm2_create --creation-data`): the size must cover it exactly. */
export function unmarshalTpm2bCreationData(bytes: Uint8Array): CreationData {
  const outer = new TpmReader(bytes);
  const inner = new TpmReader(outer.tpm2b("TPM2B_CREATION_DATA", MAX_CREATION_DATA_BYTES));
  outer.expectEnd("TPM2B_CREATION_DATA");
  const c = readCreationData(inner);
  inner.expectEnd(F);
  return c;
}

export function marshalTpm2bCreationData(c: CreationData): Buffer {
  return new TpmWriter()
    .tpm2b(marshalCreationData(c), "TPM2B_CREATION_DATA", MAX_CREATION_DATA_BYTES)
    .finish();
}
