import type { Random } from "../../runtime/clock.js";
import { TpmWriter } from "../buffer-writer.js";
import { MAX_DIGEST_BYTES, TPM_ALG, TPM_RH } from "../constants.js";
import { hashAlgInfo } from "../hash-algs.js";
import { type Authorization, type CommandRunner, EMPTY_PASSWORD, type PolicySession } from "./command.js";
import { TPM_CC, TPM_SE } from "./constants.js";
import {
  checkTpm2b,
  MAX_ENCRYPTED_SECRET_BYTES,
  MAX_ID_OBJECT_BYTES,
  MAX_TIMEOUT_BYTES,
  readTicket,
  type Ticket,
} from "./structures.js";

// Policy sessions and TPM2_ActivateCredential (Part 3 §11, §12.5, §23). Sessions are
// unbound and unsalted: they authorize by policy only, carry no HMAC key, and so need no
// secret of their own. That is all an EK with an endorsement PolicySecret asks for.

export type SessionType = "policy" | "trial";

/** TPM2_StartAuthSession; nonceCaller comes from the injected Random, sized to authHash. */
export async function startAuthSession(
  tpm: CommandRunner,
  random: Random,
  type: SessionType,
  authHash: number = TPM_ALG.SHA256,
): Promise<PolicySession & { nonceTpm: Buffer }> {
  const name = "TPM2_StartAuthSession";
  const nonceCaller = random.bytes(hashAlgInfo(authHash, `${name}.authHash`).size);
  const params = new TpmWriter()
    .tpm2b(nonceCaller, `${name}.nonceCaller`, MAX_DIGEST_BYTES)
    .u16(0, `${name}.encryptedSalt.size`)
    .u8(type === "policy" ? TPM_SE.POLICY : TPM_SE.TRIAL, `${name}.sessionType`)
    .u16(TPM_ALG.NULL, `${name}.symmetric.algorithm`)
    .u16(authHash, `${name}.authHash`)
    .finish();
  const { handles, value } = await tpm.run(
    {
      name,
      code: TPM_CC.StartAuthSession,
      handles: [TPM_RH.NULL, TPM_RH.NULL], // tpmKey, bind
      params,
      responseHandles: 1,
    },
    (r) => r.tpm2b(`${name} response.nonceTPM`, MAX_DIGEST_BYTES),
  );
  return { handle: handles[0]!, authHash, nonceTpm: value };
}

/**
 * TPM2_PolicySecret with no nonce, cpHash, policyRef or expiration: the session's policy
 * becomes "whoever knows authHandle's secret", which is policy A of the TCG EK templates
 * when authHandle is TPM_RH_ENDORSEMENT.
 */
export async function policySecret(
  tpm: CommandRunner,
  authHandle: number,
  session: PolicySession,
  auth: Authorization = EMPTY_PASSWORD,
): Promise<{ timeout: Buffer; ticket: Ticket }> {
  const name = "TPM2_PolicySecret";
  const f = `${name} response`;
  const params = new TpmWriter()
    .u16(0, `${name}.nonceTPM.size`)
    .u16(0, `${name}.cpHashA.size`)
    .u16(0, `${name}.policyRef.size`)
    .u32(0, `${name}.expiration`)
    .finish();
  const { value } = await tpm.run(
    { name, code: TPM_CC.PolicySecret, handles: [authHandle, session.handle], auths: [auth], params },
    (r) => ({
      timeout: r.tpm2b(`${f}.timeout`, MAX_TIMEOUT_BYTES),
      ticket: readTicket(r, `${f}.policyTicket`),
    }),
  );
  return value;
}

/** The session's current policy digest: what an object's authPolicy must equal. */
export async function policyGetDigest(tpm: CommandRunner, session: PolicySession): Promise<Buffer> {
  const name = "TPM2_PolicyGetDigest";
  const { value } = await tpm.run({ name, code: TPM_CC.PolicyGetDigest, handles: [session.handle] }, (r) =>
    r.tpm2b(`${name} response.policyDigest`, MAX_DIGEST_BYTES),
  );
  return value;
}

/** Authorizations for ActivateCredential; each defaults to the empty password. */
export interface ActivateAuths {
  readonly activate?: Authorization;
  readonly key?: Authorization;
}

/**
 * TPM2_ActivateCredential: `credentialBlob` (TPM2B_ID_OBJECT) and `encryptedSecret`
 * (TPM2B_ENCRYPTED_SECRET) with their sizes, as MakeCredential and the protocol give them.
 * activateHandle (the AK) is authorized in the ADMIN role, keyHandle (the EK) in the USER role.
 */
export async function activateCredential(
  tpm: CommandRunner,
  activateHandle: number,
  keyHandle: number,
  credentialBlob: Uint8Array,
  encryptedSecret: Uint8Array,
  auths: ActivateAuths = {},
): Promise<Buffer> {
  const name = "TPM2_ActivateCredential";
  checkTpm2b(credentialBlob, `${name}.credentialBlob`, MAX_ID_OBJECT_BYTES);
  checkTpm2b(encryptedSecret, `${name}.secret`, MAX_ENCRYPTED_SECRET_BYTES);
  const { value } = await tpm.run(
    {
      name,
      code: TPM_CC.ActivateCredential,
      handles: [activateHandle, keyHandle],
      auths: [auths.activate ?? EMPTY_PASSWORD, auths.key ?? EMPTY_PASSWORD],
      params: Buffer.concat([credentialBlob, encryptedSecret]),
    },
    (r) => r.tpm2b(`${name} response.certInfo`, MAX_DIGEST_BYTES),
  );
  return value;
}
