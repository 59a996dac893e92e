import { TPM_GENERATED_VALUE, TPM_RH, TPM_ST } from "../constants.js";
import { malformed } from "../errors.js";
import type { PcrSelection } from "../pcr.js";
import type { Attestation, Signed } from "./attestation-commands.js";
import type { TpmClient } from "./client.js";
import type { TpmKeyKind } from "./constants.js";
import { type LoadedKey, withUserAuth } from "./endorsement.js";
import { akTemplate, signingKeyTemplate, srkTemplate } from "./templates.js";

// What an agent does with its TPM, one call each: make its keys, activate its AK with the
// CA's credential, and produce certify / quote evidence and signatures. Each call leaves
// exactly the objects it returns loaded; sessions it needs are flushed before it returns.

export type CreatedLoadedKey = LoadedKey & { readonly privateBytes: Buffer };

/** The owner-hierarchy storage root key (transient: persist it with evictControl or flush it). */
export async function createSrk(tpm: TpmClient, kind: "rsa2048" | "ecc256" = "ecc256"): Promise<LoadedKey> {
  const { handle, public: pub, publicBytes, name } = await tpm.createPrimary(TPM_RH.OWNER, srkTemplate(kind));
  return { handle, public: pub, publicBytes, name };
}

async function createAndLoad(tpm: TpmClient, parent: number, template: Parameters<TpmClient["create"]>[1]) {
  const parentPublic = (await tpm.readPublic(parent)).public;
  // Create and Load each authorize the parent; a policy session serves one command only.
  const key = await withUserAuth(tpm, parentPublic, (auth) => tpm.create(parent, template, auth));
  const { handle } = await withUserAuth(tpm, parentPublic, (auth) =>
    tpm.load(parent, key.privateBytes, key.publicBytes, auth),
  );
  const { public: pub, publicBytes, name, privateBytes } = key;
  return { handle, public: pub, publicBytes, name, privateBytes };
}

/**
 * An attestation key under `parent` (the EK, as tpm2_createak does, or an SRK): restricted,
 * sign-only, fixedTPM, fixedParent, sensitiveDataOrigin, userWithAuth; RSASSA-SHA256,
 * ECDSA-SHA256 or ECDSA-SHA384. Created and loaded.
 */
export function createAk(tpm: TpmClient, parent: number, kind: TpmKeyKind): Promise<CreatedLoadedKey> {
  return createAndLoad(tpm, parent, akTemplate(kind));
}

/** The unrestricted, non-exportable signing key whose residency tpm-certify proves. */
export function createSigningKey(
  tpm: TpmClient,
  parent: number,
  kind: TpmKeyKind,
): Promise<CreatedLoadedKey> {
  return createAndLoad(tpm, parent, signingKeyTemplate(kind));
}

/**
 * Recovers the CA's activation secret: the TPM releases it only if `akHandle`'s Name is the
 * one the credential was made for and `ekHandle` is the EK it was encrypted to.
 */
export async function activateCredential(
  tpm: TpmClient,
  akHandle: number,
  ekHandle: number,
  credentialBlob: Uint8Array,
  encryptedSecret: Uint8Array,
): Promise<Buffer> {
  const ek = (await tpm.readPublic(ekHandle)).public;
  return withUserAuth(tpm, ek, (auth) =>
    tpm.activateCredential(akHandle, ekHandle, credentialBlob, encryptedSecret, { key: auth }),
  );
}

/** The TPM must have signed what was asked: its own magic, the right type, our nonce. */
function checkAttestation(
  a: Attestation,
  type: number,
  qualifyingData: Uint8Array,
  command: string,
): Attestation {
  const f = `${command} response.attest`;
  if (a.attest.magic !== TPM_GENERATED_VALUE) throw malformed(`${f}.magic`, "not TPM_GENERATED_VALUE");
  if (a.attest.type !== type) throw malformed(`${f}.type`, `0x${a.attest.type.toString(16)}`);
  if (!a.attest.extraData.equals(qualifyingData))
    throw malformed(`${f}.extraData`, "is not the qualifying data");
  return a;
}

/** TPM2_Certify of `objectHandle` by `signHandle` over `qualifyingData` (the CA's nonce binding). */
export async function certify(
  tpm: TpmClient,
  objectHandle: number,
  signHandle: number,
  qualifyingData: Uint8Array,
): Promise<Attestation> {
  const a = await tpm.certify(objectHandle, signHandle, qualifyingData);
  return checkAttestation(a, TPM_ST.ATTEST_CERTIFY, qualifyingData, "TPM2_Certify");
}

export async function quote(
  tpm: TpmClient,
  akHandle: number,
  qualifyingData: Uint8Array,
  pcrSelection: readonly PcrSelection[],
): Promise<Attestation> {
  const a = await tpm.quote(akHandle, qualifyingData, pcrSelection);
  return checkAttestation(a, TPM_ST.ATTEST_QUOTE, qualifyingData, "TPM2_Quote");
}

/** Signs a precomputed digest with the key's own scheme; restricted keys refuse (TPM_RC_TICKET). */
export function sign(tpm: TpmClient, keyHandle: number, digest: Uint8Array): Promise<Signed> {
  return tpm.sign(keyHandle, digest);
}
