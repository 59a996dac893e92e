import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CaClient, enrolDevice } from "../../src/agent/index.js";
import { ekPublicKeyHash } from "../../src/devices/ek-trust.js";
import {
  activateCredential,
  createAk,
  createEk,
  createSigningKey,
  readEkCertificate,
  srkTemplate,
  type TpmClient,
  withUserAuth,
} from "../../src/tpm/client/index.js";
import { unmarshalTpm2bPublic } from "../../src/tpm/index.js";
import type { TestCa } from "../helpers/test-ca.js";
import { leftovers } from "../tpm/client/live-client.js";
import { expectDenied, type LiveEnv, SHIPPED_EK_TRUST, startLive } from "./helpers/live.js";

// Activation denials with a real TPM: what a real TPM sends, only wrong for this CA. Each is
// refused with its code, audited with that code, and leaves no activation or device behind.

/** The activations and the device the CA holds for an EK: compared before and after a denial. */
async function ekState(ca: TestCa, ekHash: Buffer) {
  return ca.running.store.tx(async (tx) => {
    const d = await tx.findDeviceByEkHash(ekHash);
    return {
      activations: await tx.countActivationsSince(ekHash, 0),
      device: d && { id: d.id, akName: d.akName?.toString("hex"), updatedAt: d.updatedAt },
    };
  });
}

describe("live swtpm + Mayfly: activation denials", () => {
  let env: LiveEnv;
  let tpm: TpmClient;
  let ca: TestCa;
  let client: CaClient;
  let ek: Awaited<ReturnType<typeof createEk>>;
  let ekHash: Buffer;
  let ekCert: Buffer;
  beforeAll(async () => {
    env = await startLive("e2e-activation-denials");
    ({ tpm, ca, client } = env);
    ek = await createEk(tpm, "rsa2048");
    ekHash = ekPublicKeyHash(ek.public);
    ekCert = (await readEkCertificate(tpm, "rsa2048"))!;
  }, 60_000);
  afterAll(async () => {
    if (ek) await tpm.flushContext(ek.handle).catch(() => undefined);
    await env?.close();
  });

  /** Loads a key made under the EK for the duration of `use`. */
  async function withKey<T>(
    make: () => Promise<{ handle: number }>,
    use: (k: { handle: number }) => Promise<T>,
  ) {
    const k = await make();
    try {
      return await use(k);
    } finally {
      await tpm.flushContext(k.handle);
    }
  }

  it("refuses an AK that is not restricted (a TPM signing key could sign forged attestations)", async () => {
    const before = await ekState(ca, ekHash);
    const key = await createSigningKey(tpm, ek.handle, "ecc256");
    await tpm.flushContext(key.handle);
    const { error, event } = await expectDenied(ca, "device.ak_invalid", () =>
      client.startActivation({ ekPublic: ek.publicBytes, ekCertificate: ekCert, akPublic: key.publicBytes }),
    );
    expect(error).toMatchObject({ field: "akPublic.objectAttributes.restricted", status: 400 });
    expect(event).toMatchObject({
      type: "device.activation.start",
      subject: `ek:${ekHash.toString("hex")}`,
      data: { field: "akPublic.objectAttributes.restricted" },
    });
    expect(await ekState(ca, ekHash)).toEqual(before);
  });

  it("refuses an AK that can decrypt (a TPM storage key, restricted decrypt)", async () => {
    // A real TPM will not make a restricted key that both signs and decrypts; the simulated
    // device test sends that one. Here: a real restricted decryption key posing as the AK.
    const before = await ekState(ca, ekHash);
    const ekPub = ek.public;
    const storage = await withUserAuth(tpm, ekPub, (auth) =>
      tpm.create(ek.handle, srkTemplate("ecc256"), auth),
    );
    expect(unmarshalTpm2bPublic(storage.publicBytes).objectAttributes & 0x20000).toBeTruthy(); // decrypt
    const { error } = await expectDenied(ca, "device.ak_invalid", () =>
      client.startActivation({
        ekPublic: ek.publicBytes,
        ekCertificate: ekCert,
        akPublic: storage.publicBytes,
      }),
    );
    expect(error).toMatchObject({ field: "akPublic.objectAttributes.sign" });
    expect(await ekState(ca, ekHash)).toEqual(before);
  });

  it("refuses an EK from a manufacturer the CA does not trust (shipped vendor roots, no swtpm CA)", async () => {
    const other = await env.startCa(SHIPPED_EK_TRUST);
    const { error } = await expectDenied(other.ca, "device.ek_untrusted", () =>
      enrolDevice({ tpm, ca: other.client, ekKind: "ecc384" }),
    );
    expect(String((error as Error).message)).toMatch(/swtpm-localca/);
    const p384 = await createEk(tpm, "ecc384");
    await tpm.flushContext(p384.handle);
    expect(await ekState(other.ca, ekPublicKeyHash(p384.public))).toEqual({ activations: 0, device: null });
    // enrolDevice flushed the EK and AK it made before rethrowing.
    expect((await leftovers(tpm)).sort()).toEqual([ek.handle]);
  });

  it("refuses an EK certificate whose key is not the presented EK (the P-384 EK's certificate)", async () => {
    const before = await ekState(ca, ekHash);
    const p384Cert = (await readEkCertificate(tpm, "ecc384"))!;
    await withKey(
      () => createAk(tpm, ek.handle, "ecc256"),
      async (ak) => {
        const akPublic = (await tpm.readPublic(ak.handle)).publicBytes;
        await expectDenied(ca, "device.ek_mismatch", () =>
          client.startActivation({ ekPublic: ek.publicBytes, ekCertificate: p384Cert, akPublic }),
        );
      },
    );
    expect(await ekState(ca, ekHash)).toEqual(before);
  });

  it("burns an activation on a wrong secret: the right secret afterwards is activation.consumed", async () => {
    const ak = await createAk(tpm, ek.handle, "ecc256");
    try {
      const before = await ekState(ca, ekHash);
      const ch = await client.startActivation({
        ekPublic: ek.publicBytes,
        ekCertificate: ekCert,
        akPublic: ak.publicBytes,
      });
      const secret = await activateCredential(
        tpm,
        ak.handle,
        ek.handle,
        ch.credentialBlob,
        ch.encryptedSecret,
      );
      const wrong = Buffer.from(secret);
      wrong[0]! ^= 1;
      const first = await expectDenied(ca, "activation.secret_mismatch", () =>
        client.completeActivation(ch.activationId, wrong),
      );
      expect(first.error).toMatchObject({ status: 403, field: "secret" });
      expect(first.event).toMatchObject({
        type: "device.activation.complete",
        subject: `activation:${ch.activationId}`,
      });
      await expectDenied(ca, "activation.consumed", () => client.completeActivation(ch.activationId, secret));
      const activation = await ca.running.store.tx((tx) => tx.getActivation(ch.activationId));
      expect(activation).toMatchObject({ state: "failed", deviceId: null });
      // One activation more, and the device (if any) still on its old AK.
      expect(await ekState(ca, ekHash)).toEqual({ ...before, activations: before.activations + 1 });
    } finally {
      await tpm.flushContext(ak.handle);
    }
  });

  it("refuses an activation replayed after it succeeded", async () => {
    const ak = await createAk(tpm, ek.handle, "ecc256");
    try {
      const ch = await client.startActivation({
        ekPublic: ek.publicBytes,
        ekCertificate: ekCert,
        akPublic: ak.publicBytes,
      });
      const secret = await activateCredential(
        tpm,
        ak.handle,
        ek.handle,
        ch.credentialBlob,
        ch.encryptedSecret,
      );
      const done = await client.completeActivation(ch.activationId, secret);
      expect(done.akName.equals(ak.name)).toBe(true);
      const after = await ekState(ca, ekHash);
      expect(after.device).toMatchObject({ id: done.deviceId, akName: ak.name.toString("hex") });
      await expectDenied(ca, "activation.consumed", () => client.completeActivation(ch.activationId, secret));
      expect(await ekState(ca, ekHash)).toEqual(after);
    } finally {
      await tpm.flushContext(ak.handle);
    }
  });

  it("refuses an activation completed after it expired", async () => {
    const ak = await createAk(tpm, ek.handle, "ecc256");
    try {
      const ch = await client.startActivation({
        ekPublic: ek.publicBytes,
        ekCertificate: ekCert,
        akPublic: ak.publicBytes,
      });
      const secret = await activateCredential(
        tpm,
        ak.handle,
        ek.handle,
        ch.credentialBlob,
        ch.encryptedSecret,
      );
      const before = await ekState(ca, ekHash);
      ca.clock.advance(5 * 60_000); // the default activation TTL; expiry is exclusive
      await expectDenied(ca, "activation.expired", () => client.completeActivation(ch.activationId, secret));
      expect(await ekState(ca, ekHash)).toEqual(before);
    } finally {
      await tpm.flushContext(ak.handle);
    }
    expect(await leftovers(tpm)).toEqual([ek.handle]);
  });
});
