import {
  activateCredential,
  createAk,
  createEk,
  readEkCertificate,
  type TpmClient,
  type TpmKeyKind,
} from "../tpm/client/index.js";
import type { CaClient } from "./ca-client.js";
import { AGENT_CODES, AgentError } from "./errors.js";

// TPM device activation from the agent's side (DESIGN.md): the EK (recreated from its TCG
// template) and its certificate from NV, a fresh AK under the EK, the CA's credential
// released by TPM2_ActivateCredential, and the secret sent back. One attempt per activation.

export interface EnrolOptions {
  readonly tpm: TpmClient;
  readonly ca: CaClient;
  /** Which EK (and EK certificate); default rsa2048, the one every TPM carries. */
  readonly ekKind?: TpmKeyKind;
  /** The AK's kind; default ecc256 (fast to create, strong enough). */
  readonly akKind?: TpmKeyKind;
  /**
   * The EK certificate to present; by default the one in NV at the TCG index for ekKind
   * (none when the TPM has none: then the CA must know the EK by its registered hash).
   */
  readonly ekCertificate?: Buffer | null;
  /** Intermediates for the EK certificate, when the vendor supplies them apart. */
  readonly ekChain?: readonly Buffer[];
}

export interface Enrolment {
  readonly deviceId: string;
  readonly activationId: string;
  /** The AK, loaded (transient): the caller flushes or persists it. */
  readonly akHandle: number;
  /** TPM2B_PUBLIC of the AK, as sent to the CA. */
  readonly akPublic: Buffer;
  /** The AK Name, equal to the one the CA computed. */
  readonly akName: Buffer;
  /** TPM2B_PRIVATE of the AK, to load it again under the same EK. */
  readonly akPrivate: Buffer;
  /** The EK, loaded (transient): the caller flushes or persists it. */
  readonly ekHandle: number;
  readonly ekPublic: Buffer;
}

async function flushQuietly(tpm: TpmClient, handles: readonly number[]): Promise<void> {
  for (const h of handles) await tpm.flushContext(h).catch(() => undefined);
}

/**
 * Enrols this TPM with the CA. On success the EK and the AK stay loaded and are returned;
 * on any failure both are flushed before the error is rethrown (a CA denial keeps its code).
 */
export async function enrolDevice(o: EnrolOptions): Promise<Enrolment> {
  const { tpm, ca } = o;
  const ekKind = o.ekKind ?? "rsa2048";
  const akKind = o.akKind ?? "ecc256";
  const ekCertificate =
    o.ekCertificate === undefined ? await readEkCertificate(tpm, ekKind) : o.ekCertificate;
  const ek = await createEk(tpm, ekKind);
  const loaded = [ek.handle];
  try {
    // Under the EK, as tpm2_createak does: the AK's qualified name is QN(EK) -> AK.
    const ak = await createAk(tpm, ek.handle, akKind);
    loaded.unshift(ak.handle);
    const challenge = await ca.startActivation({
      ekPublic: ek.publicBytes,
      ekCertificate,
      ekChain: o.ekChain ?? [],
      akPublic: ak.publicBytes,
    });
    const secret = await activateCredential(
      tpm,
      ak.handle,
      ek.handle,
      challenge.credentialBlob,
      challenge.encryptedSecret,
    );
    const done = await ca.completeActivation(challenge.activationId, secret);
    if (!done.akName.equals(ak.name)) {
      throw new AgentError(
        AGENT_CODES.akNameMismatch,
        `the CA activated AK Name ${done.akName.toString("hex")}, the TPM's is ${ak.name.toString("hex")}`,
      );
    }
    return {
      deviceId: done.deviceId,
      activationId: challenge.activationId,
      akHandle: ak.handle,
      akPublic: ak.publicBytes,
      akName: ak.name,
      akPrivate: ak.privateBytes,
      ekHandle: ek.handle,
      ekPublic: ek.publicBytes,
    };
  } catch (e) {
    await flushQuietly(tpm, loaded);
    throw e;
  }
}
