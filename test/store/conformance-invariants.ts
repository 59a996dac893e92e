import { describe, expect, it } from "vitest";
import type { StoreRef } from "./conformance.js";
import { bytes, certificate, expectCode, seedAgent, T0 } from "./fixtures.js";

// The invariants the issuance pipeline leans on: a serial is used once per issuer, and a
// challenge nonce yields at most one certificate, which is what makes it one-time:
// minting writes nothing (a MAC'd nonce), so the certificate row is its only record.
export function invariantTests(store: StoreRef): void {
  describe("server secrets", () => {
    it("stores the first candidate and returns it, not later ones", async () => {
      const first = bytes("secret-1", 32);
      expect(await store().tx((tx) => tx.ensureSecret("k", first))).toEqual(first);
      expect(await store().tx((tx) => tx.ensureSecret("k", bytes("secret-2", 32)))).toEqual(first);
      // Names are independent.
      expect(await store().tx((tx) => tx.ensureSecret("other", bytes("secret-3", 32)))).toEqual(
        bytes("secret-3", 32),
      );
      expect(await store().tx((tx) => tx.ensureSecret("k", bytes("secret-4", 32)))).toEqual(first);
    });

    it("gives racing callers the one stored value", async () => {
      const candidates = Array.from({ length: 32 }, (_, i) => bytes(`candidate-${i}`, 32));
      const got = await Promise.all(candidates.map((c) => store().tx((tx) => tx.ensureSecret("k", c))));
      const distinct = new Set(got.map((g) => g.toString("hex")));
      expect(distinct.size).toBe(1);
      expect(candidates.map((c) => c.toString("hex"))).toContain([...distinct][0]);
    });

    it("is rolled back with its transaction", async () => {
      const err = await store()
        .tx(async (tx) => {
          await tx.ensureSecret("k", bytes("lost", 32));
          throw new Error("boom");
        })
        .catch((e: unknown) => e);
      expect(err).toMatchObject({ message: "boom" });
      expect(await store().tx((tx) => tx.ensureSecret("k", bytes("kept", 32)))).toEqual(bytes("kept", 32));
    });
  });

  describe("certificates", () => {
    it("round-trips, with and without a challenge, listed by agent in creation order", async () => {
      const first = certificate("s1", "a1");
      const second = certificate("s2", "a1", { challengeNonce: null, createdAt: T0 + 5 });
      const third = certificate("s3", "a1", { challengeNonce: null, createdAt: T0 + 9 });
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await seedAgent(tx, "a2");
        await tx.insertCertificate(third);
        await tx.insertCertificate(first);
        await tx.insertCertificate(second);
        await tx.insertCertificate(certificate("s4", "a2"));
      });
      await store().tx(async (tx) => {
        const got = await tx.getCertificate(first.issuerKeyId, first.serial);
        expect(got).toEqual(first);
        expect(Buffer.isBuffer(got?.der)).toBe(true);
        expect(await tx.getCertificate(bytes("issuer-2", 20), first.serial)).toBeNull();
        expect(await tx.listCertificatesByAgent("a1")).toEqual([first, second, third]);
        expect(await tx.listCertificatesByAgent("nobody")).toEqual([]);
        expect(await tx.countCertificates()).toBe(4);
      });
    });

    it("never records a serial twice for one issuer (certificate.serial_collision)", async () => {
      const c = certificate("s1", "a1");
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await tx.insertCertificate(c);
      });
      const again = { ...certificate("s2", "a1"), serial: c.serial };
      await expectCode(
        store().tx((tx) => tx.insertCertificate(again)),
        "certificate.serial_collision",
      );
      // The same serial under another issuer is a different certificate.
      await store().tx((tx) => tx.insertCertificate({ ...again, issuerKeyId: bytes("issuer-2", 20) }));
      expect(await store().tx((tx) => tx.countCertificates())).toBe(2);
    });

    it("deletes certificates expired before the cut-off, oldest first, at most `limit`", async () => {
      const at = (label: string, notAfter: number) =>
        certificate(label, "a1", { challengeNonce: null, notBefore: notAfter - 300_000, notAfter });
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await tx.insertCertificate(at("s3", T0 - 1000));
        await tx.insertCertificate(at("s1", T0 - 3000));
        await tx.insertCertificate(at("s2", T0 - 2000));
        await tx.insertCertificate(at("edge", T0));
        await tx.insertCertificate(at("live", T0 + 60_000));
      });
      const left = async () =>
        (await store().tx((tx) => tx.listCertificatesByAgent("a1"))).map((c) => c.notAfter).sort();
      expect(await store().tx((tx) => tx.deleteCertificatesExpiredBefore(T0, 2))).toBe(2);
      expect(await left()).toEqual([T0 - 1000, T0, T0 + 60_000]);
      expect(await store().tx((tx) => tx.deleteCertificatesExpiredBefore(T0, 0))).toBe(0);
      // notAfter == cut-off is not before it.
      expect(await store().tx((tx) => tx.deleteCertificatesExpiredBefore(T0, 100))).toBe(1);
      expect(await left()).toEqual([T0, T0 + 60_000]);
      expect(await store().tx((tx) => tx.deleteCertificatesExpiredBefore(T0, 100))).toBe(0);
      expect(await store().tx((tx) => tx.countCertificates())).toBe(2);
    });

    it("refuses a second certificate for a nonce as challenge.consumed, and nothing else as such", async () => {
      const c = certificate("s1", "a1");
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await seedAgent(tx, "a2");
        await tx.insertCertificate(c);
      });
      // Another serial, another agent, other times: still the same nonce, still refused,
      // with the problem the client sees (no operation named in the detail).
      const reuse = certificate("s2", "a2", { challengeNonce: c.challengeNonce, createdAt: T0 + 11 });
      const err = await store()
        .tx((tx) => tx.insertCertificate(reuse))
        .catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: "challenge.consumed",
        detail: "the challenge was already used",
        field: "nonce",
      });
      expect(await store().tx((tx) => tx.listCertificatesByAgent("a1"))).toEqual([c]);
      expect(await store().tx((tx) => tx.countCertificates())).toBe(1);
      // A repeated serial with a fresh nonce is a serial collision, not a redemption.
      await expectCode(
        store().tx((tx) => tx.insertCertificate({ ...certificate("s4", "a2"), serial: c.serial })),
        "certificate.serial_collision",
      );
      // A missing agent is a broken reference, not a redemption.
      await expectCode(
        store().tx((tx) => tx.insertCertificate(certificate("s3", "nobody"))),
        "store.conflict",
      );
    });

    it("has exactly one winner among many concurrent certificates for one nonce", async () => {
      await store().tx((tx) => seedAgent(tx, "a1"));
      const attempts = Array.from({ length: 64 }, (_, i) =>
        store().tx((tx) =>
          tx.insertCertificate(certificate(`race-${i}`, "a1", { challengeNonce: bytes("nonce-shared") })),
        ),
      );
      const outcomes = await Promise.allSettled(attempts);
      expect(outcomes.filter((o) => o.status === "fulfilled")).toHaveLength(1);
      for (const o of outcomes) {
        if (o.status === "rejected") expect(o.reason).toMatchObject({ code: "challenge.consumed" });
      }
      expect(await store().tx((tx) => tx.countCertificates())).toBe(1);
    });

    it("holds a nonce spent only while its certificate row is kept", async () => {
      // Why store.certificateRetention must outlast the challenge TTL (config/schema.ts):
      // once the retention job deletes the row, the store no longer remembers the nonce.
      const c = certificate("s1", "a1", { notAfter: T0 - 1 });
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await tx.insertCertificate(c);
      });
      await expectCode(
        store().tx((tx) =>
          tx.insertCertificate(certificate("s2", "a1", { challengeNonce: c.challengeNonce })),
        ),
        "challenge.consumed",
      );
      expect(await store().tx((tx) => tx.deleteCertificatesExpiredBefore(T0, 10))).toBe(1);
      await store().tx((tx) =>
        tx.insertCertificate(certificate("s2", "a1", { challengeNonce: c.challengeNonce })),
      );
      expect(await store().tx((tx) => tx.countCertificates())).toBe(1);
    });

    it("refuses a certificate for an unknown agent", async () => {
      await expectCode(
        store().tx((tx) => tx.insertCertificate(certificate("s1", "ghost"))),
        "store.conflict",
      );
    });
  });
}
