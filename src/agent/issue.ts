import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { bindingDigest } from "../evidence/binding.js";
import { certify, createSigningKey, quote, type TpmClient, type TpmKeyKind } from "../tpm/client/index.js";
import {
  hashAlgInfo,
  type PcrSelection,
  pcrSelectionOf,
  publicSpkiDer,
  selectedPcrs,
  TPM_ALG,
} from "../tpm/index.js";
import type { CaClient, IssuedCertificate } from "./ca-client.js";
import { buildCsr, softwareCsrSigner, tpmCsrSigner } from "./csr.js";
import { AGENT_CODES, AgentError } from "./errors.js";

// Issuance from the agent's side, one call per certificate (first issuance and renewal alike):
// a challenge, a key, evidence bound to SHA-256(nonce || SPKI of that key), a CSR, a
// certificate. Two key residencies:
//   tpm   - the key is made in the TPM (non-exportable) and certified by the AK (tpm-certify);
//   bound - a fresh software key, tied to the device now by an AK quote (tpm-quote).

const b64 = (b: Buffer): string => b.toString("base64url");

export interface IssueCommon {
  readonly tpm: TpmClient;
  readonly ca: CaClient;
  readonly agentId: string;
  /** The activated AK (loaded). */
  readonly akHandle: number;
  /** Asked-for lifetime; the CA caps it by profile and liveness. */
  readonly lifetimeSeconds?: number;
  /** DER Name for the CSR; default empty (the CA ignores it). */
  readonly subject?: Buffer;
}

export interface IssueTpmKeyOptions extends IssueCommon {
  /** A loaded storage parent for the new key (an SRK, or the EK as tpm2_createak uses it). */
  readonly parentHandle: number;
  /** Default ecc256. */
  readonly kind?: TpmKeyKind;
}

export interface TpmKeyCertificate extends IssuedCertificate {
  readonly keyResidency: "tpm";
  /** The certified key, loaded (transient): the caller flushes or persists it. */
  readonly keyHandle: number;
  /** TPM2B_PUBLIC and TPM2B_PRIVATE of the key, to load it again under the same parent. */
  readonly keyPublic: Buffer;
  readonly keyPrivate: Buffer;
  readonly keyName: Buffer;
  readonly spki: Buffer;
}

/** tpm-certify: a new TPM signing key, certified by the AK, CSR signed inside the TPM. */
export async function issueTpmKey(o: IssueTpmKeyOptions): Promise<TpmKeyCertificate> {
  const { tpm, ca } = o;
  const key = await createSigningKey(tpm, o.parentHandle, o.kind ?? "ecc256");
  try {
    const spki = publicSpkiDer(key.public);
    const { nonce } = await ca.challenge(o.agentId);
    const evidence = await certify(tpm, key.handle, o.akHandle, bindingDigest(nonce, spki));
    const csr = await buildCsr({
      spki,
      ...(o.subject ? { subject: o.subject } : {}),
      sign: tpmCsrSigner(tpm, key.handle, key.public),
    });
    const issued = await ca.requestCertificate(o.agentId, {
      csr,
      nonce,
      attestation: {
        format: "tpm-certify",
        keyPublic: b64(key.publicBytes),
        certifyInfo: b64(evidence.attestBytes),
        signature: b64(evidence.signatureBytes),
      },
      ...(o.lifetimeSeconds === undefined ? {} : { lifetimeSeconds: o.lifetimeSeconds }),
    });
    return {
      ...issued,
      keyResidency: "tpm",
      keyHandle: key.handle,
      keyPublic: key.publicBytes,
      keyPrivate: key.privateBytes,
      keyName: key.name,
      spki,
    };
  } catch (e) {
    await tpm.flushContext(key.handle).catch(() => undefined);
    throw e;
  }
}

export interface IssueBoundKeyOptions extends IssueCommon {
  /** The PCRs to quote; default SHA-256 PCRs 0-7. */
  readonly pcrs?: readonly PcrSelection[];
  /**
   * Send the quoted PCR values (read with TPM2_PCR_Read right before the quote) so the CA can
   * check them one by one; default false (the CA checks pcrDigest against its policy).
   */
  readonly sendPcrValues?: boolean;
}

export interface BoundKeyCertificate extends IssuedCertificate {
  readonly keyResidency: "bound";
  /** The software key: keep it in memory or write it 0600. */
  readonly privateKey: KeyObject;
  readonly spki: Buffer;
}

/**
 * The selected PCRs as `{ sha256: { "0": hex } }`. TPM2_PCR_Read returns at most 8 digests
 * per call; a selection it could not read whole is refused rather than sent half.
 */
async function readPcrValues(tpm: TpmClient, sel: readonly PcrSelection[]) {
  const read = await tpm.pcrRead(sel);
  const want = selectedPcrs(sel);
  const got = selectedPcrs(read.selection);
  if (
    got.length !== want.length ||
    got.some((p, i) => p.hashAlg !== want[i]!.hashAlg || p.pcr !== want[i]!.pcr)
  ) {
    throw new AgentError(
      AGENT_CODES.pcrReadIncomplete,
      `TPM2_PCR_Read returned ${got.length} of ${want.length} PCRs`,
    );
  }
  const out: Record<string, Record<string, string>> = {};
  got.forEach((p, i) => {
    const bank = hashAlgInfo(p.hashAlg, "pcrSelect.hash").node;
    const values = out[bank] ?? {};
    values[String(p.pcr)] = read.digests[i]!.toString("hex");
    out[bank] = values;
  });
  return out;
}

/** tpm-quote: a fresh software P-256 key, bound to this device now by an AK quote. */
export async function issueBoundKey(o: IssueBoundKeyOptions): Promise<BoundKeyCertificate> {
  const { tpm, ca } = o;
  const pcrs = o.pcrs ?? [pcrSelectionOf(TPM_ALG.SHA256, [0, 1, 2, 3, 4, 5, 6, 7])];
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = publicKey.export({ type: "spki", format: "der" });
  const { nonce } = await ca.challenge(o.agentId);
  let pcrValues: Record<string, Record<string, string>> | undefined;
  if (o.sendPcrValues) {
    pcrValues = await readPcrValues(tpm, pcrs);
  }
  const evidence = await quote(tpm, o.akHandle, bindingDigest(nonce, spki), pcrs);
  const csr = await buildCsr({
    spki,
    ...(o.subject ? { subject: o.subject } : {}),
    sign: softwareCsrSigner(privateKey),
  });
  const issued = await ca.requestCertificate(o.agentId, {
    csr,
    nonce,
    attestation: {
      format: "tpm-quote",
      quoteInfo: b64(evidence.attestBytes),
      signature: b64(evidence.signatureBytes),
      ...(pcrValues ? { pcrValues } : {}),
    },
    ...(o.lifetimeSeconds === undefined ? {} : { lifetimeSeconds: o.lifetimeSeconds }),
  });
  return { ...issued, keyResidency: "bound", privateKey, spki };
}
