import { setTimeout as sleep } from "node:timers/promises";
import { describe, expect, it } from "vitest";
import { isMayflyError } from "../../src/errors/index.js";
import type { StoreRef } from "./conformance.js";
import { binding, expectCode, owner, seedAgent, T0 } from "./fixtures.js";

// read(): a read-only transaction on a snapshot of committed data, which waits for no
// writer. `concurrent` is false for a backend that runs read() through its write queue
// (SQLite ":memory:", one private connection): the cases that hold a tx() open while a
// read() runs would wait for ever there, by design.

/** Resolves to "blocked" if `p` has not settled within `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | "blocked"> {
  return Promise.race([p, sleep(ms).then(() => "blocked" as const)]);
}

/** A latch: `open` resolves `opened`; a transaction that awaits `opened` holds until then. */
function latch(): { opened: Promise<void>; open: () => void } {
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return { opened, open };
}

export function readTests(store: StoreRef, concurrent: boolean): void {
  describe("read()", () => {
    it("sees committed rows, and a tx() committed before it", async () => {
      await store().tx((tx) => tx.insertOwner(owner("o1")));
      expect(await store().read((tx) => tx.getOwner("o1"))).toEqual(owner("o1"));
      await store().tx((tx) => tx.setOwnerStatus("o1", "suspended", T0 + 5));
      expect(await store().read((tx) => tx.getOwner("o1"))).toEqual(
        owner("o1", { status: "suspended", updatedAt: T0 + 5 }),
      );
    });

    it("reads what tx() reads with locks, without taking them", async () => {
      const a = await store().tx(async (tx) => {
        const a = await seedAgent(tx, "a1");
        await tx.upsertBinding(binding("a1", a.ownerId));
        return a;
      });
      const seen = await store().read(async (tx) => ({
        agent: await tx.getAgent("a1"),
        owner: (await tx.getOwner(a.ownerId))?.id,
        device: (await tx.getDevice(a.deviceId))?.id,
        locked: (await tx.lockDevice(a.deviceId))?.id,
        binding: (await tx.getBinding("a1"))?.agentId,
        head: await tx.auditHead(),
      }));
      expect(seen).toEqual({
        agent: a,
        owner: a.ownerId,
        device: a.deviceId,
        locked: a.deviceId,
        binding: "a1",
        head: null,
      });
    });

    it("refuses a write with internal.error, and the write changes nothing", async () => {
      await store().tx((tx) => tx.insertOwner(owner("o1")));
      await expectCode(
        store().read((tx) => tx.insertOwner(owner("o2"))),
        "internal.error",
      );
      const err = await store()
        .read(async (tx) => {
          expect(await tx.getOwner("o1")).toEqual(owner("o1"));
          await tx.setOwnerStatus("o1", "suspended", T0 + 9);
        })
        .catch((e: unknown) => e);
      expect(isMayflyError(err) && err.code).toBe("internal.error");
      expect(isMayflyError(err) && err.detail).toMatch(/read-only/);
      // A write swallowed by the callback is still refused: nothing is committed. (Whether
      // read() then rejects is the backend's: PostgreSQL has aborted the transaction and
      // says so, as tx() does; SQLite's refusal leaves the snapshot readable.)
      await store()
        .read(async (tx) => {
          await tx.insertOwner(owner("o3")).catch(() => undefined);
        })
        .catch(() => undefined);
      expect(await store().tx((tx) => tx.listOwners())).toEqual([owner("o1")]);
      // Both kinds of transaction still work afterwards.
      await store().tx((tx) => tx.insertOwner(owner("o4")));
      expect((await store().read((tx) => tx.listOwners())).map((o) => o.id)).toEqual(["o1", "o4"]);
    });

    it("refuses nesting either way", async () => {
      await expectCode(
        store().tx(() => store().read(async () => 1)),
        "internal.error",
      );
      await expectCode(
        store().read(() => store().tx(async () => 1)),
        "internal.error",
      );
      await expectCode(
        store().read(() => store().read(async () => 1)),
        "internal.error",
      );
      expect(await store().read(async () => "ok")).toBe("ok");
    });

    if (!concurrent) {
      // One private connection: read() queues behind the open tx() and then sees its commit.
      it("waits for a tx() still open, then sees what it committed (one connection)", async () => {
        await store().tx((tx) => tx.insertOwner(owner("o1")));
        const gate = latch();
        const inside = latch();
        const writer = store().tx(async (tx) => {
          await tx.setOwnerStatus("o1", "suspended", T0 + 5);
          inside.open();
          await gate.opened;
        });
        await inside.opened;
        const reading = store().read(async (tx) => (await tx.getOwner("o1"))?.status);
        expect(await within(reading, 200)).toBe("blocked");
        gate.open();
        await writer;
        expect(await reading).toBe("suspended");
      });
      return;
    }

    it("does not see the writes of a tx() still open, and completes without waiting for it", async () => {
      await store().tx((tx) => tx.insertOwner(owner("o1")));
      const gate = latch();
      const inside = latch();
      const writer = store().tx(async (tx) => {
        await tx.insertOwner(owner("o2"));
        await tx.setOwnerStatus("o1", "suspended", T0 + 5);
        inside.open();
        await gate.opened;
      });
      try {
        await inside.opened;
        const seen = await within(
          store().read(async (tx) => [await tx.getOwner("o2"), (await tx.getOwner("o1"))?.status]),
          5000,
        );
        expect(seen).toEqual([null, "active"]);
      } finally {
        gate.open();
        await writer;
      }
      expect(
        await store().read(async (tx) => [(await tx.getOwner("o2"))?.id, (await tx.getOwner("o1"))?.status]),
      ).toEqual(["o2", "suspended"]);
    });

    it("keeps one snapshot while a tx() commits meanwhile", async () => {
      await store().tx((tx) => tx.insertOwner(owner("o1")));
      const gate = latch();
      const first = latch();
      const reading = store().read(async (tx) => {
        const before = (await tx.getOwner("o1"))?.status;
        first.open();
        await gate.opened;
        return [before, (await tx.getOwner("o1"))?.status, (await tx.listOwners()).length];
      });
      try {
        await first.opened;
        const wrote = within(
          store().tx(async (tx) => {
            await tx.setOwnerStatus("o1", "suspended", T0 + 5);
            await tx.insertOwner(owner("o2"));
          }),
          5000,
        );
        // The writer does not wait for the reader either.
        expect(await wrote).toBeUndefined();
      } finally {
        gate.open();
      }
      expect(await reading).toEqual(["active", "active", 1]);
      expect(await store().read(async (tx) => (await tx.getOwner("o1"))?.status)).toBe("suspended");
    });
  });
}
