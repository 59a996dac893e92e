import { createHash } from "node:crypto";
import { TpmWriter } from "../buffer-writer.js";
import { TPM_RH, TPMA_OBJECT } from "../constants.js";
import { keyInvalid } from "../errors.js";
import { hashAlgInfo } from "../hash-algs.js";
import type { TpmtPublic } from "../public.js";
import type { TpmClient } from "./client.js";
import { type Authorization, EMPTY_PASSWORD, policyAuth } from "./command.js";
import { EK_CERT_NV_INDEX, TPM_CC, TPM_HT, type TpmKeyKind } from "./constants.js";
import type { ObjectPublic } from "./object-commands.js";
import { ekTemplate } from "./templates.js";

// The endorsement key: recreating it from its TCG template, reading its certificate from NV,
// and authorizing its use. A low-range EK (L-1, L-2) has userWithAuth clear, so every use
// needs a policy session that has run PolicySecret(TPM_RH_ENDORSEMENT) (gotcha G10).

export type LoadedKey = ObjectPublic & { readonly handle: number };

/** The EK for `kind`, recreated in the endorsement hierarchy (a transient handle: flush it). */
export async function createEk(tpm: TpmClient, kind: TpmKeyKind): Promise<LoadedKey> {
  const {
    handle,
    public: pub,
    publicBytes,
    name,
  } = await tpm.createPrimary(TPM_RH.ENDORSEMENT, ekTemplate(kind));
  return { handle, public: pub, publicBytes, name };
}

/**
 * The DER EK certificate at the TCG index for `kind`, exactly as stored (some vendors pad it
 * with trailing bytes; the CA decides what to accept), or null when the TPM has none.
 */
export async function readEkCertificate(tpm: TpmClient, kind: TpmKeyKind): Promise<Buffer | null> {
  const index = EK_CERT_NV_INDEX[kind];
  const defined = await tpm.listHandles(TPM_HT.NV_INDEX);
  if (!defined.includes(index)) return null;
  return tpm.nvRead(index);
}

/**
 * The policy digest of PolicySecret(authHandle) with no policyRef, from an empty policy
 * (Part 3 §23.4): H(H(0…0 || TPM_CC_PolicySecret || Name(authHandle)) || ""). The Name of
 * a permanent handle is the handle itself.
 */
export function policySecretDigest(hashAlg: number, authHandle: number): Buffer {
  const h = hashAlgInfo(hashAlg, "policy.hashAlg");
  const update = new TpmWriter().u32(TPM_CC.PolicySecret, "commandCode").u32(authHandle, "authName").finish();
  const first = createHash(h.node).update(Buffer.alloc(h.size)).update(update).digest();
  return createHash(h.node).update(first).digest();
}

/**
 * Runs `use` with an authorization for `key` in the USER role: its (empty) password when it
 * has userWithAuth, otherwise a fresh PolicySecret(TPM_RH_ENDORSEMENT) session that is
 * flushed afterwards, whatever happens. A policy we cannot satisfy is tpm.key_invalid.
 */
export async function withUserAuth<T>(
  tpm: TpmClient,
  key: TpmtPublic,
  use: (auth: Authorization) => Promise<T>,
): Promise<T> {
  if (key.objectAttributes & TPMA_OBJECT.userWithAuth) return use(EMPTY_PASSWORD);
  if (!key.authPolicy.equals(policySecretDigest(key.nameAlg, TPM_RH.ENDORSEMENT))) {
    throw keyInvalid(
      "TPMT_PUBLIC.authPolicy",
      "user authorization needs a policy other than PolicySecret(endorsement)",
    );
  }
  const session = await tpm.startAuthSession("policy", key.nameAlg);
  let result: T;
  try {
    await tpm.policySecret(TPM_RH.ENDORSEMENT, session);
    result = await use(policyAuth(session));
  } catch (e) {
    // The session was started with continueSession, so it outlives a failed command too.
    await tpm.flushContext(session.handle).catch(() => undefined);
    throw e;
  }
  await tpm.flushContext(session.handle);
  return result;
}
