import { createHash } from "node:crypto";
import type { TpmReader } from "./buffer-reader.js";
import { TpmWriter } from "./buffer-writer.js";
import { MAX_NAME_BYTES } from "./constants.js";
import { malformed } from "./errors.js";
import { hashAlgInfo } from "./hash-algs.js";
import { marshalTpmtPublic, type TpmtPublic } from "./public.js";

// Names and qualified names (Part 1 §16). A Name is kept as its raw bytes (nameAlg || digest,
// or a 4-byte handle), because that is what is hashed, signed and compared.

/**
 * Checks the shape of a TPMU_NAME: empty, a 4-byte handle, or a known nameAlg followed by
 * exactly one digest of that algorithm.
 */
export function checkName(name: Uint8Array, field: string): void {
  if (name.length === 0 || name.length === 4) return;
  if (name.length < 2) throw malformed(field, `${name.length} bytes is not a Name`);
  const alg = (name[0]! << 8) | name[1]!;
  const size = hashAlgInfo(alg, `${field}.hashAlg`).size;
  if (name.length !== 2 + size)
    throw malformed(`${field}.size`, `${name.length} does not fit nameAlg digest size ${size}`);
}

/** TPM2B_NAME, shape-checked. */
export function readName(r: TpmReader, field: string): Buffer {
  const name = r.tpm2b(field, MAX_NAME_BYTES);
  checkName(name, field);
  return name;
}

export function writeName(w: TpmWriter, name: Uint8Array, field: string): void {
  checkName(name, field);
  w.tpm2b(name, field, MAX_NAME_BYTES);
}

function digestName(nameAlg: number, data: Uint8Array, field: string): Buffer {
  const h = hashAlgInfo(nameAlg, field);
  const out = Buffer.alloc(2 + h.size);
  out.writeUInt16BE(nameAlg);
  createHash(h.node).update(data).digest().copy(out, 2);
  return out;
}

/** Name = nameAlg || H_nameAlg(TPMT_PUBLIC). Computed by the CA, never taken from the client. */
export function objectName(pub: TpmtPublic): Buffer {
  return digestName(pub.nameAlg, marshalTpmtPublic(pub), "TPMT_PUBLIC.nameAlg");
}

/**
 * Name over a marshalled TPMT_PUBLIC as received (the content of a TPM2B_PUBLIC that parsed
 * strictly, with `nameAlg` read from it): what the TPM hashed, without re-marshalling the
 * parsed structure. Equal to objectName(parse(bytes)) for every encoding the strict parser
 * accepts (test/tpm/name.test.ts); were the two ever to differ, this one is the TPM's.
 */
export function objectNameOfPublicArea(nameAlg: number, publicArea: Uint8Array): Buffer {
  return digestName(nameAlg, publicArea, "TPMT_PUBLIC.nameAlg");
}

/** The QN of a hierarchy (the parent QN of a primary key, e.g. an EK) is its handle. */
export function hierarchyQualifiedName(handle: number): Buffer {
  return new TpmWriter().u32(handle, "TPM_RH").finish();
}

/**
 * QN(B) = nameAlg_B || H_nameAlg_B(QN(parent) || Name(B)). This is what qualifiedSigner in a
 * TPMS_ATTEST holds, so it binds a signature to the AK's whole ancestry (EK included).
 */
export function qualifiedName(parentQualifiedName: Uint8Array, name: Uint8Array): Buffer {
  checkName(parentQualifiedName, "parentQualifiedName");
  checkName(name, "name");
  if (name.length === 0 || name.length === 4)
    throw malformed("name", "a handle or empty Name has no qualified name");
  const nameAlg = (name[0]! << 8) | name[1]!;
  return digestName(nameAlg, Buffer.concat([parentQualifiedName, name]), "name.hashAlg");
}
