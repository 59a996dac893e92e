import { type TpmsAttest, unmarshalAttest } from "../attest.js";
import type { TpmReader } from "../buffer-reader.js";
import { TpmWriter } from "../buffer-writer.js";
import { MAX_DATA_BYTES, MAX_DIGEST_BYTES } from "../constants.js";
import { type PcrSelection, readPcrSelection, writePcrSelection } from "../pcr.js";
import { type AsymScheme, writeAsymScheme } from "../public-params.js";
import { marshalSignature, readSignature, type TpmtSignature } from "../signature.js";
import { type Authorization, type CommandRunner, EMPTY_PASSWORD } from "./command.js";
import { TPM_CC } from "./constants.js";
import { MAX_ATTEST_BYTES, readDigestList, writeNullHashcheck } from "./structures.js";

// TPM2_Certify, TPM2_Quote, TPM2_Sign and TPM2_PCR_Read (Part 3 §18, §20, §22). The attest
// bytes are kept exactly as the TPM signed them: that is what the CA verifies.

export interface Signed {
  readonly signature: TpmtSignature;
  /** The marshalled TPMT_SIGNATURE, as the Mayfly protocol carries it. */
  readonly signatureBytes: Buffer;
}

export interface Attestation extends Signed {
  /** The bare TPMS_ATTEST (certifyInfo / quoted) that the signature covers. */
  readonly attestBytes: Buffer;
  readonly attest: TpmsAttest;
}

export interface SignOptions {
  readonly auth?: Authorization;
  /** null (TPM_ALG_NULL): use the key's own scheme. */
  readonly scheme?: AsymScheme | null;
}

export interface CertifyOptions extends SignOptions {
  /** For objectHandle, in the ADMIN role; `auth` is for the signing key. */
  readonly objectAuth?: Authorization;
}

function readSigned(r: TpmReader): Signed {
  const signature = readSignature(r);
  return { signature, signatureBytes: marshalSignature(signature) };
}

function readAttestation(r: TpmReader, field: string): Attestation {
  const attestBytes = r.tpm2b(field, MAX_ATTEST_BYTES);
  return { attestBytes, attest: unmarshalAttest(attestBytes), ...readSigned(r) };
}

export async function certify(
  tpm: CommandRunner,
  objectHandle: number,
  signHandle: number,
  qualifyingData: Uint8Array,
  opts: CertifyOptions = {},
): Promise<Attestation> {
  const name = "TPM2_Certify";
  const params = new TpmWriter().tpm2b(qualifyingData, `${name}.qualifyingData`, MAX_DATA_BYTES);
  writeAsymScheme(params, opts.scheme ?? null, `${name}.inScheme`);
  const { value } = await tpm.run(
    {
      name,
      code: TPM_CC.Certify,
      handles: [objectHandle, signHandle],
      auths: [opts.objectAuth ?? EMPTY_PASSWORD, opts.auth ?? EMPTY_PASSWORD],
      params: params.finish(),
    },
    (r) => readAttestation(r, `${name} response.certifyInfo`),
  );
  return value;
}

export async function quote(
  tpm: CommandRunner,
  signHandle: number,
  qualifyingData: Uint8Array,
  pcrSelection: readonly PcrSelection[],
  opts: SignOptions = {},
): Promise<Attestation> {
  const name = "TPM2_Quote";
  const params = new TpmWriter().tpm2b(qualifyingData, `${name}.qualifyingData`, MAX_DATA_BYTES);
  writeAsymScheme(params, opts.scheme ?? null, `${name}.inScheme`);
  writePcrSelection(params, pcrSelection, `${name}.PCRselect`);
  const { value } = await tpm.run(
    {
      name,
      code: TPM_CC.Quote,
      handles: [signHandle],
      auths: [opts.auth ?? EMPTY_PASSWORD],
      params: params.finish(),
    },
    (r) => readAttestation(r, `${name} response.quoted`),
  );
  return value;
}

/**
 * Signs a digest computed outside the TPM. There is no hash ticket, so a restricted key
 * refuses (TPM_RC_TICKET): restricted keys sign only through Certify and Quote.
 */
export async function sign(
  tpm: CommandRunner,
  keyHandle: number,
  digest: Uint8Array,
  opts: SignOptions = {},
): Promise<Signed> {
  const name = "TPM2_Sign";
  const params = new TpmWriter().tpm2b(digest, `${name}.digest`, MAX_DIGEST_BYTES);
  writeAsymScheme(params, opts.scheme ?? null, `${name}.inScheme`);
  writeNullHashcheck(params, `${name}.validation`);
  const { value } = await tpm.run(
    {
      name,
      code: TPM_CC.Sign,
      handles: [keyHandle],
      auths: [opts.auth ?? EMPTY_PASSWORD],
      params: params.finish(),
    },
    readSigned,
  );
  return value;
}

export interface PcrValues {
  readonly updateCounter: number;
  /** What the TPM actually read; it may be less than asked (at most 8 digests per call). */
  readonly selection: PcrSelection[];
  /** In selection order, as they enter a quote's pcrDigest. */
  readonly digests: Buffer[];
}

export async function pcrRead(tpm: CommandRunner, selection: readonly PcrSelection[]): Promise<PcrValues> {
  const name = "TPM2_PCR_Read";
  const f = `${name} response`;
  const params = new TpmWriter();
  writePcrSelection(params, selection, `${name}.pcrSelectionIn`);
  const { value } = await tpm.run({ name, code: TPM_CC.PCR_Read, params: params.finish() }, (r) => ({
    updateCounter: r.u32(`${f}.pcrUpdateCounter`),
    selection: readPcrSelection(r, `${f}.pcrSelectionOut`),
    digests: readDigestList(r, `${f}.pcrValues`),
  }));
  return value;
}
