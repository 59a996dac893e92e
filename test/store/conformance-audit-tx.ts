import { describe, expect, it } from "vitest";
import type { StoreTx } from "../../src/store/store.js";
import type { AuditEvent } from "../../src/store/types.js";
import type { StoreRef } from "./conformance.js";
import { bytes, certificate, expectCode, owner, seedAgent, T0 } from "./fixtures.js";

// The store keeps audit rows as given (hashes here are arbitrary: chaining is the audit
// module's job), and tx() is all-or-nothing and serialised.

function event(seq: number, over: Partial<AuditEvent> = {}): AuditEvent {
  return {
    seq,
    ts: T0 + seq,
    type: "certificate.issue",
    decision: seq % 2 === 0 ? "deny" : "allow",
    code: seq % 2 === 0 ? "owner.inactive" : null,
    actor: `agent:a${seq}`,
    subject: null,
    data: { seq, nested: { list: [1, "two", null, true, { deep: -0.5 }] }, text: 'héllo ✓ 𝄞 \u0000\n"' },
    prevHash: bytes(`prev-${seq}`),
    hash: bytes(`hash-${seq}`),
    ...over,
  };
}

async function appendNext(tx: StoreTx): Promise<number> {
  const head = await tx.auditHead();
  const seq = (head?.seq ?? 0) + 1;
  await tx.insertAuditEvent(event(seq, { prevHash: head?.hash ?? Buffer.alloc(32) }));
  return seq;
}

export function auditAndTxTests(store: StoreRef): void {
  describe("audit events", () => {
    it("has no head when empty", async () => {
      expect(await store().tx((tx) => tx.auditHead())).toBeNull();
      expect(await store().tx((tx) => tx.listAuditEvents(1, 10))).toEqual([]);
    });

    it("round-trips every field; the head is the highest seq; lists page in seq order", async () => {
      const all = Array.from({ length: 12 }, (_, i) => event(i + 1));
      all[3] = event(4, { code: null, actor: null, subject: "device:d1", data: {}, decision: "info" });
      await store().tx(async (tx) => {
        for (const e of [...all].reverse()) await tx.insertAuditEvent(e);
      });
      await store().tx(async (tx) => {
        // The head is the link the next event needs: seq and hash, nothing else.
        expect(await tx.auditHead()).toStrictEqual({ seq: all[11]!.seq, hash: all[11]!.hash });
        expect(await tx.listAuditEvents(1, 100)).toEqual(all);
        expect(await tx.listAuditEvents(5, 3)).toEqual(all.slice(4, 7));
        expect(await tx.listAuditEvents(12, 3)).toEqual(all.slice(11));
        expect(await tx.listAuditEvents(13, 3)).toEqual([]);
      });
    });

    it("refuses a second event with the same seq (store.conflict)", async () => {
      await store().tx((tx) => tx.insertAuditEvent(event(1)));
      await expectCode(
        store().tx((tx) => tx.insertAuditEvent(event(1, { type: "other" }))),
        "store.conflict",
      );
    });

    it("serialises read-head-then-append under concurrency: no fork, no gap", async () => {
      const seqs = await Promise.all(Array.from({ length: 25 }, () => store().tx(appendNext)));
      expect([...seqs].sort((a, b) => a - b)).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
      const rows = await store().tx((tx) => tx.listAuditEvents(1, 100));
      for (let i = 1; i < rows.length; i++) expect(rows[i]?.prevHash).toEqual(rows[i - 1]?.hash);
    });
  });

  describe("transactions", () => {
    it("returns the callback's value and makes commits visible to later transactions", async () => {
      const v = await store().tx(async (tx) => {
        await tx.insertOwner(owner("o1"));
        return 42;
      });
      expect(v).toBe(42);
      expect(await store().tx((tx) => tx.getOwner("o1"))).toEqual(owner("o1"));
    });

    it("rolls back every write when the callback throws, and rethrows the same error", async () => {
      const boom = new Error("boom");
      const err = await store()
        .tx(async (tx) => {
          const a = await seedAgent(tx, "a1");
          await tx.ensureSecret("k", bytes("secret", 32));
          await tx.insertCertificate(certificate("s1", a.id));
          await tx.insertAuditEvent(event(1));
          throw boom;
        })
        .catch((e: unknown) => e);
      expect(err).toBe(boom);
      await store().tx(async (tx) => {
        expect(await tx.getOwner("o-a1")).toBeNull();
        expect(await tx.getDevice("d-a1")).toBeNull();
        expect(await tx.getAgent("a1")).toBeNull();
        expect(await tx.ensureSecret("k", bytes("other", 32))).toEqual(bytes("other", 32));
        expect(await tx.countCertificates()).toBe(0);
        expect(await tx.auditHead()).toBeNull();
      });
    });

    it("rolls back earlier writes when a later write fails", async () => {
      await store().tx((tx) => tx.insertOwner(owner("o1")));
      await expectCode(
        store().tx(async (tx) => {
          await tx.insertOwner(owner("o2"));
          await tx.insertOwner(owner("o1"));
        }),
        "store.conflict",
      );
      expect(await store().tx((tx) => tx.getOwner("o2"))).toBeNull();
    });

    it("refuses a transaction handle used after its transaction ended", async () => {
      let leaked: StoreTx | null = null;
      await store().tx(async (tx) => {
        leaked = tx;
      });
      await expect((leaked as unknown as StoreTx).insertOwner(owner("o9"))).rejects.toThrow();
      expect(await store().tx((tx) => tx.getOwner("o9"))).toBeNull();
    });
  });
}
