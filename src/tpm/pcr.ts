import { createHash } from "node:crypto";
import { TpmReader } from "./buffer-reader.js";
import { TpmWriter } from "./buffer-writer.js";
import { MAX_PCR_BANKS, MAX_PCR_SELECT_BYTES } from "./constants.js";
import { malformed } from "./errors.js";
import { hashAlgInfo } from "./hash-algs.js";

// TPML_PCR_SELECTION (Part 2 §10.9.7) and the quote's pcrDigest (Part 3 §18.4).

/** TPMS_PCR_SELECTION: bit i of pcrSelect[j] selects PCR 8j+i. */
export interface PcrSelection {
  readonly hashAlg: number;
  readonly pcrSelect: Buffer;
}

const F = "TPML_PCR_SELECTION";

export function readPcrSelection(r: TpmReader, field = F): PcrSelection[] {
  const count = r.u32(`${field}.count`);
  if (count > MAX_PCR_BANKS)
    throw malformed(`${field}.count`, `${count} exceeds the maximum of ${MAX_PCR_BANKS}`);
  const out: PcrSelection[] = [];
  for (let i = 0; i < count; i++) {
    const f = `${field}.pcrSelections[${i}]`;
    const hashAlg = r.u16(`${f}.hash`);
    hashAlgInfo(hashAlg, `${f}.hash`);
    const size = r.u8(`${f}.sizeofSelect`);
    if (size > MAX_PCR_SELECT_BYTES) {
      throw malformed(`${f}.sizeofSelect`, `${size} exceeds the maximum of ${MAX_PCR_SELECT_BYTES}`);
    }
    out.push({ hashAlg, pcrSelect: r.bytes(size, `${f}.pcrSelect`) });
  }
  return out;
}

export function writePcrSelection(w: TpmWriter, sel: readonly PcrSelection[], field = F): void {
  if (sel.length > MAX_PCR_BANKS) throw malformed(`${field}.count`, `${sel.length} banks`);
  w.u32(sel.length, `${field}.count`);
  sel.forEach((s, i) => {
    const f = `${field}.pcrSelections[${i}]`;
    if (s.pcrSelect.length > MAX_PCR_SELECT_BYTES)
      throw malformed(`${f}.sizeofSelect`, `${s.pcrSelect.length}`);
    w.u16(s.hashAlg, `${f}.hash`).u8(s.pcrSelect.length, `${f}.sizeofSelect`).bytes(s.pcrSelect);
  });
}

export function unmarshalPcrSelection(bytes: Uint8Array): PcrSelection[] {
  const r = new TpmReader(bytes);
  const sel = readPcrSelection(r);
  r.expectEnd(F);
  return sel;
}

export function marshalPcrSelection(sel: readonly PcrSelection[]): Buffer {
  const w = new TpmWriter();
  writePcrSelection(w, sel);
  return w.finish();
}

/** Builds a selection of `pcrs` in one bank, with the usual 3-byte (24 PCR) bitmap. */
export function pcrSelectionOf(hashAlg: number, pcrs: readonly number[], sizeofSelect = 3): PcrSelection {
  const pcrSelect = Buffer.alloc(sizeofSelect);
  for (const p of pcrs) {
    if (!Number.isInteger(p) || p < 0 || p >= sizeofSelect * 8)
      throw malformed("pcrSelect", `PCR ${p} out of range`);
    pcrSelect[p >> 3]! |= 1 << (p & 7);
  }
  return { hashAlg, pcrSelect };
}

/** The (bank, PCR) pairs in the order a TPM concatenates them for pcrDigest. */
export function selectedPcrs(sel: readonly PcrSelection[]): Array<{ hashAlg: number; pcr: number }> {
  const out: Array<{ hashAlg: number; pcr: number }> = [];
  for (const s of sel) {
    for (let i = 0; i < s.pcrSelect.length * 8; i++) {
      if ((s.pcrSelect[i >> 3]! >> (i & 7)) & 1) out.push({ hashAlg: s.hashAlg, pcr: i });
    }
  }
  return out;
}

/** PCR values by bank (TPM_ALG_ID) then PCR index. */
export type PcrBanks = ReadonlyMap<number, ReadonlyMap<number, Uint8Array>>;

/**
 * pcrDigest = H(values of the selected PCRs, in selection order), where H is the signing
 * scheme's hash, not the bank's (a SHA-1 bank quoted with SHA-256 is hashed with SHA-256).
 * A missing value or one of the wrong size is an error naming the PCR.
 */
export function computePcrDigest(digestAlg: number, sel: readonly PcrSelection[], values: PcrBanks): Buffer {
  const h = createHash(hashAlgInfo(digestAlg, "digestAlg").node);
  for (const { hashAlg, pcr } of selectedPcrs(sel)) {
    const field = `pcrValues[0x${hashAlg.toString(16).padStart(4, "0")}][${pcr}]`;
    const v = values.get(hashAlg)?.get(pcr);
    if (!v) throw malformed(field, "missing");
    const size = hashAlgInfo(hashAlg, field).size;
    if (v.length !== size) throw malformed(field, `${v.length} bytes, the bank digest is ${size}`);
    h.update(v);
  }
  return h.digest();
}
