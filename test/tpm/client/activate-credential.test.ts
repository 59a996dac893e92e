import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMayflyError, type MayflyError } from "../../../src/errors/index.js";
import {
  activateCredential,
  createAk,
  createEk,
  policyAuth,
  TPM_KEY_KINDS,
  type TpmClient,
} from "../../../src/tpm/client/index.js";
import { makeCredential, objectName, TPM_ALG, TPMA_OBJECT } from "../../../src/tpm/index.js";
import { seededRandom } from "../helpers/seeded-random.js";
import { Swtpm } from "../helpers/swtpm.js";
import { clientFor, leftovers } from "./live-client.js";

// The CA's MakeCredential (src/tpm) against the real TPM's ActivateCredential, all through
// our client: EK from the TCG template, AK under it (as tpm2_createak does), and for the
// low-range EKs the PolicySecret(endorsement) session dance.

describe("live swtpm: our client's ActivateCredential returns our MakeCredential's secret", () => {
  let sw: Swtpm;
  let tpm: TpmClient;
  const random = seededRandom("activate-credential");
  beforeAll(async () => {
    sw = await Swtpm.start();
    tpm = clientFor(sw, "activate-credential");
  }, 30_000);
  afterAll(async () => {
    await tpm?.close();
    await sw?.stop();
  });

  it.each(TPM_KEY_KINDS)("%s EK", async (kind) => {
    const ek = await createEk(tpm, kind);
    const ak = await createAk(tpm, ek.handle, kind);
    try {
      expect(ak.name.equals(objectName(ak.public))).toBe(true);
      expect(ak.public.objectAttributes & TPMA_OBJECT.restricted).toBeTruthy();
      // The low-range EKs need the policy session; the H-3 one takes the empty password.
      expect((ek.public.objectAttributes & TPMA_OBJECT.userWithAuth) !== 0).toBe(kind === "ecc384");
      if (kind === "ecc384") expect(ek.public.nameAlg).toBe(TPM_ALG.SHA384);

      const secret = random.bytes(32);
      const cred = makeCredential(ek.public, ak.name, secret, random);
      const got = await activateCredential(
        tpm,
        ak.handle,
        ek.handle,
        cred.credentialBlob,
        cred.encryptedSecret,
      );
      expect(got.equals(secret)).toBe(true);

      // Bound to another Name (the EK's): the TPM refuses with TPM_RC_INTEGRITY on the blob.
      const wrong = makeCredential(ek.public, objectName(ek.public), secret, random);
      const err = await activateCredential(
        tpm,
        ak.handle,
        ek.handle,
        wrong.credentialBlob,
        wrong.encryptedSecret,
      ).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isMayflyError(err)).toBe(true);
      expect((err as MayflyError).code).toBe("tpm.command_failed");
      expect((err as MayflyError).extra).toMatchObject({
        command: "TPM2_ActivateCredential",
        rc: 0x1df,
        name: "TPM_RC_INTEGRITY",
        format: "one",
        parameter: 1,
      });

      // The policy session is flushed on success and on failure alike.
      expect((await leftovers(tpm)).sort()).toEqual([ek.handle, ak.handle].sort());
    } finally {
      await tpm.flushContext(ak.handle);
      await tpm.flushContext(ek.handle);
    }
  });

  it("an L-1 EK refuses its password, and a policy session that skipped PolicySecret", async () => {
    const ek = await createEk(tpm, "rsa2048");
    const ak = await createAk(tpm, ek.handle, "rsa2048");
    const cred = makeCredential(ek.public, ak.name, random.bytes(32), random);
    const failure = (p: Promise<unknown>) =>
      p.then(
        () => ({}),
        (e: MayflyError) => e.extra ?? {},
      );
    try {
      const noPolicy = tpm.activateCredential(
        ak.handle,
        ek.handle,
        cred.credentialBlob,
        cred.encryptedSecret,
      );
      // userWithAuth is clear: the USER role is available through the policy only.
      expect(await failure(noPolicy)).toMatchObject({ name: "TPM_RC_AUTH_UNAVAILABLE", format: "zero" });
      const session = await tpm.startAuthSession("policy", ek.public.nameAlg);
      try {
        const unsatisfied = tpm.activateCredential(
          ak.handle,
          ek.handle,
          cred.credentialBlob,
          cred.encryptedSecret,
          {
            key: policyAuth(session),
          },
        );
        expect(await failure(unsatisfied)).toMatchObject({ name: "TPM_RC_POLICY_FAIL", session: 2 });
      } finally {
        await tpm.flushContext(session.handle);
      }
    } finally {
      await tpm.flushContext(ak.handle);
      await tpm.flushContext(ek.handle);
    }
  });

  it("leaves no objects or sessions behind", async () => {
    expect(await leftovers(tpm)).toEqual([]);
  });
});
