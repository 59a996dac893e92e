import { describe, expect, it } from "vitest";
import type { StoreRef } from "./conformance.js";
import { bytes, certificate, challenge, expectCode, seedAgent, T0 } from "./fixtures.js";

// The invariants the issuance pipeline leans on: a challenge has exactly one winner,
// a serial is used once per issuer, a challenge yields at most one certificate.
export function invariantTests(store: StoreRef): void {
  describe("challenges", () => {
    it("round-trips and reads unknown nonces as null", async () => {
      const c = challenge("c1", "a1");
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await tx.insertChallenge(c);
      });
      expect(await store().tx((tx) => tx.getChallenge(c.nonce))).toEqual(c);
      expect(await store().tx((tx) => tx.getChallenge(bytes("other")))).toBeNull();
      await expectCode(
        store().tx((tx) => tx.insertChallenge(c)),
        "store.conflict",
      );
    });

    it("is consumed once, and records when", async () => {
      const c = challenge("c1", "a1");
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await tx.insertChallenge(c);
      });
      expect(await store().tx((tx) => tx.consumeChallenge(c.nonce, T0 + 10))).toBe(true);
      expect(await store().tx((tx) => tx.consumeChallenge(c.nonce, T0 + 11))).toBe(false);
      expect(await store().tx((tx) => tx.getChallenge(c.nonce))).toEqual({ ...c, consumedAt: T0 + 10 });
      expect(await store().tx((tx) => tx.consumeChallenge(bytes("unknown"), T0))).toBe(false);
    });

    it("expires at expiresAt exactly: one ms before wins, at expiresAt loses", async () => {
      const early = challenge("c1", "a1");
      const edge = challenge("c2", "a1");
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await tx.insertChallenge(early);
        await tx.insertChallenge(edge);
      });
      expect(await store().tx((tx) => tx.consumeChallenge(edge.nonce, edge.expiresAt))).toBe(false);
      expect(await store().tx((tx) => tx.getChallenge(edge.nonce))).toEqual(edge);
      expect(await store().tx((tx) => tx.consumeChallenge(early.nonce, early.expiresAt - 1))).toBe(true);
    });

    it("has exactly one winner among many concurrent attempts", async () => {
      const c = challenge("c1", "a1");
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await tx.insertChallenge(c);
      });
      const attempts = Array.from({ length: 64 }, (_, i) =>
        store().tx((tx) => tx.consumeChallenge(c.nonce, T0 + 1 + (i % 7))),
      );
      const wins = (await Promise.all(attempts)).filter(Boolean);
      expect(wins).toHaveLength(1);
    });

    it("deletes only challenges that expired before the cut-off", async () => {
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await tx.insertChallenge(challenge("old", "a1", { expiresAt: T0 }));
        await tx.insertChallenge(challenge("edge", "a1", { expiresAt: T0 + 100 }));
        await tx.insertChallenge(challenge("new", "a1", { expiresAt: T0 + 200 }));
      });
      expect(await store().tx((tx) => tx.deleteExpiredChallenges(T0 + 100))).toBe(1);
      expect(await store().tx((tx) => tx.getChallenge(bytes("nonce-old")))).toBeNull();
      expect(await store().tx((tx) => tx.getChallenge(bytes("nonce-edge")))).not.toBeNull();
      expect(await store().tx((tx) => tx.deleteExpiredChallenges(T0 + 1000))).toBe(2);
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

    it("gives a challenge at most one certificate (store.conflict)", async () => {
      const c = certificate("s1", "a1");
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await tx.insertCertificate(c);
      });
      const reuse = certificate("s2", "a1", { challengeNonce: c.challengeNonce });
      await expectCode(
        store().tx((tx) => tx.insertCertificate(reuse)),
        "store.conflict",
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
