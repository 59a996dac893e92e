import type { TpmReader } from "../buffer-reader.js";
import { TpmWriter, toTpm2b } from "../buffer-writer.js";
import { MAX_DATA_BYTES, MAX_DIGEST_BYTES } from "../constants.js";
import type { CreationData } from "../creation-data.js";
import { malformed } from "../errors.js";
import { objectName, readName } from "../name.js";
import { writePcrSelection } from "../pcr.js";
import { marshalTpm2bPublic, type TpmtPublic, unmarshalTpm2bPublic, unmarshalTpmtPublic } from "../public.js";
import { type Authorization, type CommandRunner, EMPTY_PASSWORD } from "./command.js";
import { TPM_CC } from "./constants.js";
import {
  checkTpm2b,
  MAX_PRIVATE_BYTES,
  readTicket,
  readTpm2bCreationData,
  type Ticket,
  writeSensitiveCreate,
} from "./structures.js";

// TPM2_CreatePrimary, TPM2_Create, TPM2_Load and TPM2_ReadPublic (Part 3 §12, §24). Every
// Name the TPM reports is checked against the Name computed from the public area it sent:
// a mismatch means the bytes cannot be trusted to describe the same key.

export interface ObjectPublic {
  readonly public: TpmtPublic;
  /** TPM2B_PUBLIC with its size, as the Mayfly protocol and `tpm2_* -f tss` carry it. */
  readonly publicBytes: Buffer;
  readonly name: Buffer;
}

export interface Creation {
  readonly creationData: CreationData;
  /** The bare TPMS_CREATION_DATA; creationHash is its digest under the object's nameAlg. */
  readonly creationDataBytes: Buffer;
  readonly creationHash: Buffer;
  readonly creationTicket: Ticket;
}

export type CreatedPrimary = ObjectPublic & Creation & { readonly handle: number };
export type CreatedKey = ObjectPublic & Creation & { readonly privateBytes: Buffer };

const MAX_PUBLIC_BYTES = 1024;

function readPublicArea(r: TpmReader, field: string): { public: TpmtPublic; publicBytes: Buffer } {
  const inner = r.tpm2b(field, MAX_PUBLIC_BYTES);
  return { public: unmarshalTpmtPublic(inner), publicBytes: toTpm2b(inner, field, MAX_PUBLIC_BYTES) };
}

function checkName(pub: TpmtPublic, name: Buffer, field: string): void {
  if (!objectName(pub).equals(name)) throw malformed(field, "does not match the public area's Name");
}

function readCreation(r: TpmReader, f: string): Creation {
  const { bytes, data } = readTpm2bCreationData(r, `${f}.creationData`);
  const creationHash = r.tpm2b(`${f}.creationHash`, MAX_DIGEST_BYTES);
  const creationTicket = readTicket(r, `${f}.creationTicket`);
  return { creationData: data, creationDataBytes: bytes, creationHash, creationTicket };
}

/** inSensitive (empty auth, no data), inPublic, outsideInfo (empty), creationPCR (none). */
function creationParams(template: TpmtPublic, f: string): Buffer {
  const w = new TpmWriter();
  writeSensitiveCreate(w, Buffer.alloc(0), `${f}.inSensitive`);
  w.bytes(marshalTpm2bPublic(template));
  w.tpm2b(Buffer.alloc(0), `${f}.outsideInfo`, MAX_DATA_BYTES);
  writePcrSelection(w, [], `${f}.creationPCR`);
  return w.finish();
}

export async function createPrimary(
  tpm: CommandRunner,
  hierarchy: number,
  template: TpmtPublic,
  auth: Authorization = EMPTY_PASSWORD,
): Promise<CreatedPrimary> {
  const name = "TPM2_CreatePrimary";
  const f = `${name} response`;
  const { handles, value } = await tpm.run(
    {
      name,
      code: TPM_CC.CreatePrimary,
      handles: [hierarchy],
      auths: [auth],
      params: creationParams(template, name),
      responseHandles: 1,
    },
    (r) => {
      const pub = readPublicArea(r, `${f}.outPublic`);
      const creation = readCreation(r, f);
      const objName = readName(r, `${f}.name`);
      checkName(pub.public, objName, `${f}.name`);
      return { ...pub, ...creation, name: objName };
    },
  );
  return { ...value, handle: handles[0]! };
}

/** A key under `parent`, not loaded: Load it, or keep privateBytes to load it later. */
export async function create(
  tpm: CommandRunner,
  parent: number,
  template: TpmtPublic,
  parentAuth: Authorization = EMPTY_PASSWORD,
): Promise<CreatedKey> {
  const name = "TPM2_Create";
  const f = `${name} response`;
  const { value } = await tpm.run(
    {
      name,
      code: TPM_CC.Create,
      handles: [parent],
      auths: [parentAuth],
      params: creationParams(template, name),
    },
    (r) => {
      const privateBytes = toTpm2b(r.tpm2b(`${f}.outPrivate`, MAX_PRIVATE_BYTES), "TPM2B_PRIVATE");
      const pub = readPublicArea(r, `${f}.outPublic`);
      return { privateBytes, ...pub, ...readCreation(r, f), name: objectName(pub.public) };
    },
  );
  return value;
}

/** Loads a key made by Create; `privateBytes` and `publicBytes` are TPM2Bs with their sizes. */
export async function load(
  tpm: CommandRunner,
  parent: number,
  privateBytes: Uint8Array,
  publicBytes: Uint8Array,
  parentAuth: Authorization = EMPTY_PASSWORD,
): Promise<{ handle: number; name: Buffer }> {
  const name = "TPM2_Load";
  const f = `${name} response`;
  checkTpm2b(privateBytes, `${name}.inPrivate`, MAX_PRIVATE_BYTES);
  const pub = unmarshalTpm2bPublic(publicBytes);
  const { handles, value } = await tpm.run(
    {
      name,
      code: TPM_CC.Load,
      handles: [parent],
      auths: [parentAuth],
      params: Buffer.concat([privateBytes, publicBytes]),
      responseHandles: 1,
    },
    (r) => {
      const objName = readName(r, `${f}.name`);
      checkName(pub, objName, `${f}.name`);
      return objName;
    },
  );
  return { handle: handles[0]!, name: value };
}

export async function readPublic(
  tpm: CommandRunner,
  handle: number,
): Promise<ObjectPublic & { qualifiedName: Buffer }> {
  const name = "TPM2_ReadPublic";
  const f = `${name} response`;
  const { value } = await tpm.run({ name, code: TPM_CC.ReadPublic, handles: [handle] }, (r) => {
    const pub = readPublicArea(r, `${f}.outPublic`);
    const objName = readName(r, `${f}.name`);
    checkName(pub.public, objName, `${f}.name`);
    return { ...pub, name: objName, qualifiedName: readName(r, `${f}.qualifiedName`) };
  });
  return value;
}
