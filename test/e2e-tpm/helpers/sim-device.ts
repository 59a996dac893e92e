import { generateKeyPairSync, type KeyObject } from "node:crypto";
import type { CaClient } from "../../../src/agent/index.js";
import { akQualifiedNameUnderEk } from "../../../src/devices/ak-policy.js";
import { ekPublicKeyHash } from "../../../src/devices/ek-trust.js";
import { ekTemplate } from "../../../src/tpm/client/index.js";
import { keyParamsFromKeyObject, marshalTpm2bPublic, type TpmtPublic } from "../../../src/tpm/index.js";
import { AK_ATTRS, type SimKey, simKey } from "../../evidence/helpers/tpm-sim.js";
import type { TestCa } from "../../helpers/test-ca.js";
import { activateCredentialSoftware } from "../../tpm/helpers/activate-credential.js";

// TEST ONLY: a device whose "TPM" is software, for inputs a real TPM will not produce (an
// attestation with a wrong magic signed by a restricted AK, a SHA-1 AK signature, a certified
// key with sensitiveDataOrigin clear). It goes through the same HTTP API as a real one: its EK
// is known by registered hash (as `mayfly device register --ek-hash` does it), the CA makes
// the credential, and the test-only software ActivateCredential answers it.

export interface SimDevice {
  readonly deviceId: string;
  readonly ek: TpmtPublic;
  readonly ekPrivate: KeyObject;
  readonly ak: SimKey;
}

/** An RSA-2048 EK with the TCG L-1 template's shape around a software key. */
export function simEk(): { pub: TpmtPublic; privateKey: KeyObject } {
  const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const pub = { ...ekTemplate("rsa2048"), ...keyParamsFromKeyObject(publicKey) } as TpmtPublic;
  return { pub, privateKey };
}

export async function registerEk(ca: TestCa, ek: TpmtPublic): Promise<void> {
  await ca.running.store.tx((tx) =>
    tx.upsertEkRegistration({
      ekPubHash: ekPublicKeyHash(ek),
      source: "test:sim-device",
      note: "software-simulated TPM",
      createdAt: ca.clock.now(),
    }),
  );
}

/**
 * Registers a software EK and activates a software P-256 AK through the HTTP API. The AK
 * returned signs as the EK's child, QN(EK -> AK), as an agent's AK made under the EK does
 * (and as the CA recorded at activation).
 */
export async function activateSimDevice(ca: TestCa, client: CaClient, ak: SimKey = simKey("p256", AK_ATTRS)) {
  const ek = simEk();
  await registerEk(ca, ek.pub);
  const ch = await client.startActivation({ ekPublic: marshalTpm2bPublic(ek.pub), akPublic: ak.tpm2b });
  const secret = activateCredentialSoftware(
    ek.pub,
    ek.privateKey,
    ak.name,
    ch.credentialBlob,
    ch.encryptedSecret,
  );
  const done = await client.completeActivation(ch.activationId, secret);
  const underEk: SimKey = { ...ak, qualifiedName: akQualifiedNameUnderEk(ek.pub, ak.name) };
  return { deviceId: done.deviceId, ek: ek.pub, ekPrivate: ek.privateKey, ak: underEk } satisfies SimDevice;
}
