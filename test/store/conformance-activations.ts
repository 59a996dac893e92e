import { describe, expect, it } from "vitest";
import type { StoreRef } from "./conformance.js";
import { activation, bytes, device, ekRegistration, expectCode, owner, T0 } from "./fixtures.js";

// TPM activations: one attempt each, decided by a conditional update so that exactly one
// attempt wins on any number of connections or replicas; expiresAt is exclusive. And the
// EKs vouched for by hash: upsert keeps the first createdAt, replaces source and note.
export function activationTests(store: StoreRef): void {
  describe("activations", () => {
    it("round-trips every field, nulls as null and Buffers byte for byte", async () => {
      const full = activation("act-1");
      const sparse = activation("act-2", "ek-2", { ekCertIssuer: null, trustedVia: "registered" });
      const done = activation("act-3", "ek-3", {
        state: "succeeded",
        deviceId: "d-3",
        completedAt: T0 + 1_000,
      });
      await store().tx(async (tx) => {
        await tx.insertActivation(full);
        await tx.insertActivation(sparse);
        await tx.insertActivation(done);
      });
      await store().tx(async (tx) => {
        const got = await tx.getActivation("act-1");
        expect(got).toEqual(full);
        for (const b of [got?.ekPubHash, got?.ekPublic, got?.akPublic, got?.akName, got?.secretHash]) {
          expect(Buffer.isBuffer(b)).toBe(true);
        }
        expect(await tx.getActivation("act-2")).toEqual(sparse);
        expect(await tx.getActivation("act-3")).toEqual(done);
        expect(await tx.getActivation("nope")).toBeNull();
      });
    });

    it("refuses a second activation with the same id (store.conflict)", async () => {
      await store().tx((tx) => tx.insertActivation(activation("act-1")));
      await expectCode(
        store().tx((tx) => tx.insertActivation(activation("act-1", "ek-other"))),
        "store.conflict",
      );
      expect(await store().tx((tx) => tx.getActivation("act-1"))).toEqual(activation("act-1"));
    });

    it("completes once: records state, device and time; later attempts lose", async () => {
      const a = activation("act-1");
      await store().tx((tx) => tx.insertActivation(a));
      expect(await store().tx((tx) => tx.completeActivation("act-1", "succeeded", "d-1", T0 + 10))).toBe(
        true,
      );
      const done = { ...a, state: "succeeded", deviceId: "d-1", completedAt: T0 + 10 };
      expect(await store().tx((tx) => tx.getActivation("act-1"))).toEqual(done);
      expect(await store().tx((tx) => tx.completeActivation("act-1", "succeeded", "d-2", T0 + 11))).toBe(
        false,
      );
      expect(await store().tx((tx) => tx.completeActivation("act-1", "failed", null, T0 + 12))).toBe(false);
      expect(await store().tx((tx) => tx.getActivation("act-1"))).toEqual(done);
      expect(await store().tx((tx) => tx.completeActivation("unknown", "failed", null, T0))).toBe(false);
    });

    it("a failed activation is final: no second try succeeds", async () => {
      const a = activation("act-1");
      await store().tx((tx) => tx.insertActivation(a));
      expect(await store().tx((tx) => tx.completeActivation("act-1", "failed", null, T0 + 5))).toBe(true);
      expect(await store().tx((tx) => tx.completeActivation("act-1", "succeeded", "d-1", T0 + 6))).toBe(
        false,
      );
      expect(await store().tx((tx) => tx.getActivation("act-1"))).toEqual({
        ...a,
        state: "failed",
        deviceId: null,
        completedAt: T0 + 5,
      });
    });

    it("refuses an activation inserted already completed", async () => {
      await store().tx((tx) =>
        tx.insertActivation(activation("act-1", "ek-1", { state: "failed", completedAt: T0 + 1 })),
      );
      expect(await store().tx((tx) => tx.completeActivation("act-1", "succeeded", "d-1", T0 + 2))).toBe(
        false,
      );
    });

    it("expires at expiresAt exactly: at expiresAt loses, one ms before wins", async () => {
      const edge = activation("act-edge");
      const early = activation("act-early");
      await store().tx(async (tx) => {
        await tx.insertActivation(edge);
        await tx.insertActivation(early);
      });
      expect(
        await store().tx((tx) => tx.completeActivation("act-edge", "succeeded", "d-1", edge.expiresAt)),
      ).toBe(false);
      expect(
        await store().tx((tx) => tx.completeActivation("act-edge", "failed", null, edge.expiresAt + 1)),
      ).toBe(false);
      expect(await store().tx((tx) => tx.getActivation("act-edge"))).toEqual(edge);
      expect(
        await store().tx((tx) => tx.completeActivation("act-early", "succeeded", "d-1", early.expiresAt - 1)),
      ).toBe(true);
    });

    it("has exactly one winner among many concurrent attempts, and keeps the winner's outcome", async () => {
      await store().tx((tx) => tx.insertActivation(activation("act-1")));
      const attempts = Array.from({ length: 64 }, (_, i) => {
        const state = i % 3 === 0 ? "failed" : "succeeded";
        const deviceId = state === "failed" ? null : `d-${i}`;
        return store()
          .tx((tx) => tx.completeActivation("act-1", state, deviceId, T0 + 1 + i))
          .then((won) => ({ won, state, deviceId, at: T0 + 1 + i }));
      });
      const winners = (await Promise.all(attempts)).filter((r) => r.won);
      expect(winners).toHaveLength(1);
      const w = winners[0];
      const got = await store().tx((tx) => tx.getActivation("act-1"));
      expect(got).toMatchObject({ state: w?.state, deviceId: w?.deviceId, completedAt: w?.at });
    });

    it("counts one EK's activations created at or after `since`, whatever their state", async () => {
      await store().tx(async (tx) => {
        await tx.insertActivation(activation("a-before", "ek-1", { createdAt: T0 - 1 }));
        await tx.insertActivation(activation("a-at", "ek-1", { createdAt: T0 }));
        await tx.insertActivation(activation("a-after", "ek-1", { createdAt: T0 + 5 }));
        await tx.insertActivation(activation("b-at", "ek-2", { createdAt: T0 }));
      });
      const ek1 = bytes("ek-hash-ek-1");
      await store().tx(async (tx) => {
        expect(await tx.countActivationsSince(ek1, T0 - 2)).toBe(3);
        expect(await tx.countActivationsSince(ek1, T0 - 1)).toBe(3);
        expect(await tx.countActivationsSince(ek1, T0)).toBe(2);
        expect(await tx.countActivationsSince(ek1, T0 + 5)).toBe(1);
        expect(await tx.countActivationsSince(ek1, T0 + 6)).toBe(0);
        expect(await tx.countActivationsSince(bytes("ek-hash-ek-2"), T0)).toBe(1);
        expect(await tx.countActivationsSince(bytes("ek-hash-unknown"), 0)).toBe(0);
      });
      await store().tx(async (tx) => {
        await tx.completeActivation("a-at", "failed", null, T0 + 1);
        await tx.completeActivation("a-after", "succeeded", "d-1", T0 + 6);
      });
      expect(await store().tx((tx) => tx.countActivationsSince(ek1, T0))).toBe(2);
    });
  });

  describe("device AK", () => {
    it("records the activated AK and issuer on a device, leaving the rest alone", async () => {
      const fresh = device("d1", { akName: null, akPublic: null, ekCertIssuer: null });
      await store().tx((tx) => tx.insertDevice(fresh));
      const akPublic = bytes("ak-public-new", 90);
      const akName = bytes("ak-name-new", 34);
      await store().tx((tx) => tx.setDeviceAk("d1", akPublic, akName, "CN=Example TPM CA", T0 + 50));
      const got = await store().tx((tx) => tx.getDevice("d1"));
      expect(got).toEqual({
        ...fresh,
        akPublic,
        akName,
        ekCertIssuer: "CN=Example TPM CA",
        updatedAt: T0 + 50,
      });
      expect(Buffer.isBuffer(got?.akPublic)).toBe(true);

      // Re-activation with a new AK through a registered EK: the issuer becomes null.
      const akPublic2 = bytes("ak-public-2", 120);
      const akName2 = bytes("ak-name-2", 34);
      await store().tx((tx) => tx.setDeviceAk("d1", akPublic2, akName2, null, T0 + 60));
      expect(await store().tx((tx) => tx.getDevice("d1"))).toEqual({
        ...fresh,
        akPublic: akPublic2,
        akName: akName2,
        ekCertIssuer: null,
        updatedAt: T0 + 60,
      });
      expect(await store().tx((tx) => tx.findDeviceByEkHash(fresh.ekPubHash as Buffer))).toMatchObject({
        id: "d1",
        akName: akName2,
      });
    });

    it("round-trips the AK's qualified name through insert, setDeviceAk and updateDevice", async () => {
      const qn0 = bytes("ak-qn-0", 34);
      const d = device("d1", { akQualifiedName: qn0 });
      await store().tx((tx) => tx.insertDevice(d));
      const got0 = await store().tx((tx) => tx.getDevice("d1"));
      expect(got0).toEqual(d);
      expect(Buffer.isBuffer(got0?.akQualifiedName)).toBe(true);
      // A device inserted without the field reads it back as null.
      const { akQualifiedName: _omit, ...older } = device("d2");
      await store().tx((tx) => tx.insertDevice(older));
      expect((await store().tx((tx) => tx.getDevice("d2")))?.akQualifiedName).toBeNull();

      // Re-activation records the new AK's QN with it.
      const qn1 = bytes("ak-qn-1", 50);
      await store().tx((tx) =>
        tx.setDeviceAk("d1", bytes("ak-pub-1", 90), bytes("ak-name-1", 34), null, T0 + 10, qn1),
      );
      const got1 = await store().tx((tx) => tx.getDevice("d1"));
      expect(got1?.akQualifiedName).toEqual(qn1);
      expect(await store().tx((tx) => tx.findDeviceByEkHash(d.ekPubHash as Buffer))).toEqual(got1);

      // Without the argument the old AK's QN does not survive the new AK.
      await store().tx((tx) =>
        tx.setDeviceAk("d1", bytes("ak-pub-2", 90), bytes("ak-name-2", 34), null, T0 + 20),
      );
      expect((await store().tx((tx) => tx.getDevice("d1")))?.akQualifiedName).toBeNull();

      // updateDevice writes it like every other column, and can clear it.
      const qn2 = bytes("ak-qn-2", 34);
      const cur = (await store().tx((tx) => tx.getDevice("d1")))!;
      await store().tx((tx) => tx.updateDevice({ ...cur, akQualifiedName: qn2, updatedAt: T0 + 30 }));
      expect(await store().tx((tx) => tx.getDevice("d1"))).toEqual({
        ...cur,
        akQualifiedName: qn2,
        updatedAt: T0 + 30,
      });
      await store().tx((tx) => tx.updateDevice({ ...cur, akQualifiedName: null, updatedAt: T0 + 40 }));
      expect((await store().tx((tx) => tx.getDevice("d1")))?.akQualifiedName).toBeNull();
      expect((await store().tx((tx) => tx.listDevices({ limit: 10 }))).map((x) => x.akQualifiedName)).toEqual(
        [null, null],
      );
    });

    it("an unknown device is device.not_found", async () => {
      await expectCode(
        store().tx((tx) => tx.setDeviceAk("ghost", bytes("p"), bytes("n", 34), null, T0)),
        "device.not_found",
      );
    });
  });

  describe("EK registrations", () => {
    it("round-trips, including a null note; unknown hashes read as null", async () => {
      const r1 = ekRegistration("ek-1");
      const r2 = ekRegistration("ek-2", { source: "mdm:intune", note: null, createdAt: T0 + 7 });
      await store().tx(async (tx) => {
        await tx.upsertEkRegistration(r1);
        await tx.upsertEkRegistration(r2);
      });
      await store().tx(async (tx) => {
        const got = await tx.getEkRegistration(r1.ekPubHash);
        expect(got).toEqual(r1);
        expect(Buffer.isBuffer(got?.ekPubHash)).toBe(true);
        expect(await tx.getEkRegistration(r2.ekPubHash)).toEqual(r2);
        expect(await tx.getEkRegistration(bytes("ek-hash-unknown"))).toBeNull();
      });
    });

    it("re-registering replaces source and note but keeps the first createdAt", async () => {
      await store().tx((tx) => tx.upsertEkRegistration(ekRegistration("ek-1")));
      await store().tx((tx) =>
        tx.upsertEkRegistration(
          ekRegistration("ek-1", { source: "mdm:jamf", note: null, createdAt: T0 + 99 }),
        ),
      );
      expect(await store().tx((tx) => tx.getEkRegistration(bytes("ek-hash-ek-1")))).toEqual(
        ekRegistration("ek-1", { source: "mdm:jamf", note: null, createdAt: T0 }),
      );
    });

    it("deletes: true once, then false; a later registration starts afresh", async () => {
      const h = bytes("ek-hash-ek-1");
      await store().tx(async (tx) => {
        await tx.upsertEkRegistration(ekRegistration("ek-1"));
        await tx.upsertEkRegistration(ekRegistration("ek-2"));
      });
      expect(await store().tx((tx) => tx.deleteEkRegistration(h))).toBe(true);
      expect(await store().tx((tx) => tx.deleteEkRegistration(h))).toBe(false);
      expect(await store().tx((tx) => tx.deleteEkRegistration(bytes("ek-hash-unknown")))).toBe(false);
      expect(await store().tx((tx) => tx.getEkRegistration(h))).toBeNull();
      expect(await store().tx((tx) => tx.getEkRegistration(bytes("ek-hash-ek-2")))).not.toBeNull();
      const again = ekRegistration("ek-1", { source: "cli", note: "re-added", createdAt: T0 + 500 });
      await store().tx((tx) => tx.upsertEkRegistration(again));
      expect(await store().tx((tx) => tx.getEkRegistration(h))).toEqual(again);
    });
  });

  describe("activation transactions", () => {
    it("rolls back activations, completions, AK changes and registrations when the callback throws", async () => {
      const d = device("d1");
      await store().tx(async (tx) => {
        await tx.insertOwner(owner("o1"));
        await tx.insertDevice(d);
        await tx.insertActivation(activation("act-old"));
        await tx.upsertEkRegistration(ekRegistration("ek-old"));
      });
      const boom = new Error("boom");
      const err = await store()
        .tx(async (tx) => {
          await tx.insertActivation(activation("act-new", "ek-1", { createdAt: T0 + 1 }));
          expect(await tx.completeActivation("act-old", "succeeded", "d1", T0 + 2)).toBe(true);
          await tx.setDeviceAk("d1", bytes("ak-public-x", 90), bytes("ak-name-x", 34), null, T0 + 3);
          await tx.upsertEkRegistration(ekRegistration("ek-new"));
          await tx.upsertEkRegistration(ekRegistration("ek-old", { source: "mdm:x", note: null }));
          expect(await tx.deleteEkRegistration(bytes("ek-hash-ek-old"))).toBe(true);
          throw boom;
        })
        .catch((e: unknown) => e);
      expect(err).toBe(boom);
      await store().tx(async (tx) => {
        expect(await tx.getActivation("act-new")).toBeNull();
        expect(await tx.getActivation("act-old")).toEqual(activation("act-old"));
        expect(await tx.countActivationsSince(bytes("ek-hash-ek-1"), 0)).toBe(1);
        expect(await tx.getDevice("d1")).toEqual(d);
        expect(await tx.getEkRegistration(bytes("ek-hash-ek-new"))).toBeNull();
        expect(await tx.getEkRegistration(bytes("ek-hash-ek-old"))).toEqual(ekRegistration("ek-old"));
      });
      // The rolled-back completion did not use up the attempt.
      expect(await store().tx((tx) => tx.completeActivation("act-old", "failed", null, T0 + 4))).toBe(true);
    });

    it("rolls back an inserted activation when a later write in the transaction fails", async () => {
      await store().tx((tx) => tx.insertActivation(activation("act-1")));
      await expectCode(
        store().tx(async (tx) => {
          await tx.insertActivation(activation("act-2"));
          await tx.insertActivation(activation("act-1"));
        }),
        "store.conflict",
      );
      expect(await store().tx((tx) => tx.getActivation("act-2"))).toBeNull();
    });
  });
}
