import { TpmReader } from "../buffer-reader.js";
import { TpmWriter } from "../buffer-writer.js";
import { MAX_DIGEST_BYTES, TPM_RH } from "../constants.js";
import { type CreationData, unmarshalCreationData } from "../creation-data.js";
import { malformed } from "../errors.js";
import { hashAlgInfo } from "../hash-algs.js";
import { TPM_ST_HASHCHECK } from "./constants.js";

// Structures only a TPM client sends or receives (Part 2): tickets, TPM2B_SENSITIVE_CREATE,
// the NV public area and digest lists. The CA-side structures live one directory up.

/** Bounds from the reference implementation's sizeof(), rounded up: they only stop nonsense. */
export const MAX_PRIVATE_BYTES = 2048; // TPM2B_PRIVATE: sizeof(_PRIVATE)
export const MAX_ATTEST_BYTES = 2048; // TPM2B_ATTEST: sizeof(TPMS_ATTEST)
export const MAX_CREATION_DATA_BYTES = 1024;
export const MAX_NV_BUFFER_BYTES = 2048; // TPM2B_MAX_NV_BUFFER
export const MAX_ID_OBJECT_BYTES = 2 + 64 + 2 + 64; // TPM2B_ID_OBJECT
export const MAX_ENCRYPTED_SECRET_BYTES = 512; // TPM2B_ENCRYPTED_SECRET: an RSA-4096 block
export const MAX_TIMEOUT_BYTES = 8; // TPM2B_TIMEOUT: a UINT64
const MAX_PCR_DIGESTS = 8; // TPML_DIGEST in PCR_Read

/** TPMT_TK_CREATION, TPMT_TK_AUTH, TPMT_TK_HASHCHECK: the same three fields. */
export interface Ticket {
  readonly tag: number;
  readonly hierarchy: number;
  readonly digest: Buffer;
}

export function readTicket(r: TpmReader, field: string): Ticket {
  const tag = r.u16(`${field}.tag`);
  const hierarchy = r.u32(`${field}.hierarchy`);
  return { tag, hierarchy, digest: r.tpm2b(`${field}.digest`, MAX_DIGEST_BYTES) };
}

/** The NULL ticket Sign takes for a digest the TPM did not hash itself. */
export function writeNullHashcheck(w: TpmWriter, field: string): void {
  w.u16(TPM_ST_HASHCHECK, `${field}.tag`)
    .u32(TPM_RH.NULL, `${field}.hierarchy`)
    .u16(0, `${field}.digest.size`);
}

/** TPM2B_SENSITIVE_CREATE with an empty data field: the TPM generates the key itself. */
export function writeSensitiveCreate(w: TpmWriter, userAuth: Uint8Array, field: string): void {
  const inner = new TpmWriter()
    .tpm2b(userAuth, `${field}.sensitive.userAuth`, MAX_DIGEST_BYTES)
    .u16(0, `${field}.sensitive.data.size`)
    .finish();
  w.tpm2b(inner, field, 0xffff);
}

/** TPM2B_CREATION_DATA: the bytes (creationHash is their digest) and their parsed form. */
export function readTpm2bCreationData(r: TpmReader, field: string): { bytes: Buffer; data: CreationData } {
  const bytes = r.tpm2b(field, MAX_CREATION_DATA_BYTES);
  return { bytes, data: unmarshalCreationData(bytes) };
}

/** TPMS_NV_PUBLIC (Part 2 §13.5). */
export interface NvPublic {
  readonly nvIndex: number;
  readonly nameAlg: number;
  readonly attributes: number;
  readonly authPolicy: Buffer;
  readonly dataSize: number;
}

/** TPMA_NV bits this client looks at (Part 2 §13.4). */
export const TPMA_NV = {
  authRead: 1 << 18,
  ownerRead: 1 << 17,
  written: 1 << 29,
  platformCreate: 1 << 30,
} as const;

const NV = "TPMS_NV_PUBLIC";

export function readNvPublic(bytes: Uint8Array): NvPublic {
  const r = new TpmReader(bytes);
  const nvIndex = r.u32(`${NV}.nvIndex`);
  const nameAlg = r.u16(`${NV}.nameAlg`);
  const digestSize = hashAlgInfo(nameAlg, `${NV}.nameAlg`).size;
  const attributes = r.u32(`${NV}.attributes`);
  const authPolicy = r.tpm2b(`${NV}.authPolicy`, MAX_DIGEST_BYTES);
  if (authPolicy.length !== 0 && authPolicy.length !== digestSize) {
    throw malformed(`${NV}.authPolicy.size`, `${authPolicy.length} is neither 0 nor ${digestSize}`);
  }
  const dataSize = r.u16(`${NV}.dataSize`);
  r.expectEnd(NV);
  return { nvIndex, nameAlg, attributes, authPolicy, dataSize };
}

/** TPML_DIGEST (Part 2 §10.9.2) as PCR_Read returns it. */
export function readDigestList(r: TpmReader, field: string): Buffer[] {
  const count = r.u32(`${field}.count`);
  if (count > MAX_PCR_DIGESTS) throw malformed(`${field}.count`, `${count} exceeds ${MAX_PCR_DIGESTS}`);
  const out: Buffer[] = [];
  for (let i = 0; i < count; i++) out.push(r.tpm2b(`${field}.digests[${i}]`, MAX_DIGEST_BYTES));
  return out;
}

/** Caller-supplied TPM2B bytes (with their size) must be exactly one TPM2B within `max`. */
export function checkTpm2b(bytes: Uint8Array, field: string, max: number): void {
  if (bytes.length < 2) throw malformed(`${field}.size`, "missing");
  const size = (bytes[0]! << 8) | bytes[1]!;
  if (size > max || size !== bytes.length - 2) {
    throw malformed(
      `${field}.size`,
      `${size} does not cover the ${bytes.length - 2} byte(s) given (max ${max})`,
    );
  }
}
