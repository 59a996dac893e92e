import { describe, expect, it } from "vitest";
import type { CaJournalEntry } from "../../src/store/types.js";
import type { StoreRef } from "./conformance.js";
import { bytes, caCertificate, certificate, seedAgent, T0 } from "./fixtures.js";

// What CA rotation needs from a store: a compare-and-set on a CA certificate's slot, the
// latest notAfter under an issuer, and the rotation journal whose (rotationId, step) is
// recorded once however many replicas attempt it.
export function rotationTests(store: StoreRef): void {
  describe("CA rotation: slot compare-and-set", () => {
    it("moves a slot only from the expected one", async () => {
      await store().tx((tx) => tx.insertCaCertificate(caCertificate("cc01", { slot: "next" })));
      expect(await store().tx((tx) => tx.compareAndSetCaSlot("cc01", "current", "previous"))).toBe(false);
      expect(await store().tx((tx) => tx.compareAndSetCaSlot("cc01", "next", "current"))).toBe(true);
      expect(await store().tx((tx) => tx.compareAndSetCaSlot("cc01", "next", "current"))).toBe(false);
      expect(await store().tx((tx) => tx.compareAndSetCaSlot("absent", "next", "current"))).toBe(false);
      const [row] = await store().tx((tx) => tx.listCaCertificates());
      expect(row?.slot).toBe("current");
    });

    it("has exactly one winner among concurrent attempts", async () => {
      await store().tx((tx) => tx.insertCaCertificate(caCertificate("cc02", { slot: "next" })));
      const wins = await Promise.all(
        Array.from({ length: 32 }, () =>
          store().tx((tx) => tx.compareAndSetCaSlot("cc02", "next", "current")),
        ),
      );
      expect(wins.filter(Boolean)).toHaveLength(1);
    });
  });

  describe("CA rotation: certificates under an issuer", () => {
    it("gives the latest notAfter per issuer, null when none", async () => {
      const issuer = bytes("issuer-rot", 20);
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await tx.insertCertificate(certificate("r1", "a1", { issuerKeyId: issuer, notAfter: T0 + 10 }));
        await tx.insertCertificate(certificate("r2", "a1", { issuerKeyId: issuer, notAfter: T0 + 99 }));
        await tx.insertCertificate(certificate("r3", "a1", { notAfter: T0 + 5_000 }));
      });
      await store().tx(async (tx) => {
        expect(await tx.maxCertificateNotAfter(issuer)).toBe(T0 + 99);
        expect(await tx.maxCertificateNotAfter(bytes("issuer-none", 20))).toBeNull();
      });
    });
  });

  describe("CA rotation journal", () => {
    const entry = (rotationId: string, step: string, at = T0): Omit<CaJournalEntry, "seq"> => ({
      rotationId,
      kind: rotationId.startsWith("root:") ? "root" : "intermediate",
      step,
      at,
      data: { note: "Ünïcødé ✓", n: 1, nested: { list: [1, "two"] } },
    });

    it("appends with increasing seq, records a step once, lists in seq order", async () => {
      const a = await store().tx((tx) => tx.appendCaJournal(entry("intermediate:aa", "prepared")));
      const b = await store().tx((tx) => tx.appendCaJournal(entry("intermediate:aa", "canaried", T0 + 1)));
      const c = await store().tx((tx) => tx.appendCaJournal(entry("root:bb", "prepared", T0 + 2)));
      expect(a && b && c).toBeTruthy();
      expect(a!.seq).toBeLessThan(b!.seq);
      expect(b!.seq).toBeLessThan(c!.seq);
      expect(
        await store().tx((tx) => tx.appendCaJournal(entry("intermediate:aa", "prepared", T0 + 9))),
      ).toBeNull();
      const list = await store().tx((tx) => tx.listCaJournal());
      expect(list).toEqual([a, b, c]);
      expect(list[0]).toEqual({ ...entry("intermediate:aa", "prepared"), seq: a!.seq });
    });

    it("rolls back with its transaction", async () => {
      await expect(
        store().tx(async (tx) => {
          await tx.appendCaJournal(entry("root:cc", "prepared"));
          throw new Error("crash after the journal write");
        }),
      ).rejects.toThrow("crash");
      expect(await store().tx((tx) => tx.listCaJournal())).toEqual([]);
      expect(await store().tx((tx) => tx.appendCaJournal(entry("root:cc", "prepared")))).not.toBeNull();
    });

    it("records one winner when replicas take the same step at once", async () => {
      const results = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          store().tx((tx) => tx.appendCaJournal(entry("intermediate:dd", "activated", T0 + i))),
        ),
      );
      expect(results.filter((r) => r !== null)).toHaveLength(1);
      expect(await store().tx((tx) => tx.listCaJournal())).toHaveLength(1);
    });
  });
}
