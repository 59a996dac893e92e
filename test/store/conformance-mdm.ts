import { describe, expect, it } from "vitest";
import type { StoreRef } from "./conformance.js";
import { agent, bytes, device, expectCode, owner, T0 } from "./fixtures.js";

// What the MDM hook (issue 8) needs from a store: devices found by their MDM id (unique),
// replaced whole and held while an event decides on them, listed for the inventory; the
// agents on a device (unenrolment suspends them); and jti replay records that exactly one
// delivery wins, across connections and replicas.
export function mdmTests(store: StoreRef): void {
  describe("devices as the MDM knows them", () => {
    it("round-trips the posture fields and finds a device by its MDM id", async () => {
      const d = device("d1", {
        kind: "managed",
        assignedUser: "alice@example.test",
        platform: "macOS 14.5 — Ünïcødé ✓",
        complianceReason: "disk encryption off",
        postureAt: T0 + 5,
        mdmEventAt: T0 + 6,
        akQualifiedName: bytes("ak-qn-d1", 34),
      });
      const bare = device("d2", { mdmId: null, ekPubHash: null });
      await store().tx(async (tx) => {
        await tx.insertDevice(d);
        await tx.insertDevice(bare);
      });
      await store().tx(async (tx) => {
        expect(await tx.getDevice("d1")).toEqual(d);
        expect(await tx.getDevice("d2")).toEqual(bare);
        expect(await tx.findDeviceByMdmId("mdm-d1")).toEqual(d);
        expect(await tx.findDeviceByMdmId("mdm-nope")).toBeNull();
        expect(await tx.lockDevice("d1")).toEqual(d);
        expect(await tx.lockDevice("nope")).toBeNull();
      });
    });

    it("one device per MDM id; devices the MDM never named do not collide", async () => {
      await store().tx(async (tx) => {
        await tx.insertDevice(device("d1"));
        await tx.insertDevice(device("d2", { mdmId: null }));
        await tx.insertDevice(device("d3", { mdmId: null }));
      });
      await expectCode(
        store().tx((tx) => tx.insertDevice(device("d4", { mdmId: "mdm-d1" }))),
        "store.conflict",
      );
      expect(await store().tx((tx) => tx.getDevice("d4"))).toBeNull();
    });

    it("updateDevice replaces everything but id and createdAt; unknown is device.not_found", async () => {
      const d = device("d1");
      await store().tx(async (tx) => {
        await tx.insertDevice(d);
        await tx.insertDevice(device("d2"));
      });
      const changed = device("d1", {
        kind: "managed",
        status: "unenrolled",
        ekPubHash: bytes("ek-new"),
        ekCertIssuer: null,
        akName: null,
        akPublic: null,
        serial: "SN-new",
        mdmId: "mdm-new",
        managed: false,
        compliant: true,
        assignedOwnerId: "o-1",
        assignedUser: "bob",
        platform: "Windows 11",
        complianceReason: "ok",
        postureAt: T0 + 100,
        mdmEventAt: T0 + 101,
        akQualifiedName: bytes("ak-qn-new", 34),
        createdAt: T0 + 999, // ignored
        updatedAt: T0 + 102,
      });
      await store().tx((tx) => tx.updateDevice(changed));
      await store().tx(async (tx) => {
        expect(await tx.getDevice("d1")).toEqual({ ...changed, createdAt: d.createdAt });
        expect(await tx.findDeviceByMdmId("mdm-new")).toMatchObject({ id: "d1" });
        expect(await tx.findDeviceByMdmId("mdm-d1")).toBeNull();
        expect(await tx.findDeviceByEkHash(bytes("ek-new"))).toMatchObject({ id: "d1" });
      });
      await expectCode(
        store().tx((tx) => tx.updateDevice(device("nope"))),
        "device.not_found",
      );
      // Another device's EK or MDM id is taken: nothing changes.
      await expectCode(
        store().tx((tx) => tx.updateDevice(device("d2", { ekPubHash: bytes("ek-new") }))),
        "store.conflict",
      );
      await expectCode(
        store().tx((tx) => tx.updateDevice(device("d2", { mdmId: "mdm-new" }))),
        "store.conflict",
      );
      expect(await store().tx((tx) => tx.getDevice("d2"))).toEqual(device("d2"));
    });

    it("lists devices in id order, by page and by status", async () => {
      await store().tx(async (tx) => {
        for (const id of ["d3", "d1", "d4", "d2"]) {
          await tx.insertDevice(device(id, { status: id === "d2" ? "unenrolled" : "active" }));
        }
      });
      await store().tx(async (tx) => {
        expect((await tx.listDevices({ limit: 10 })).map((d) => d.id)).toEqual(["d1", "d2", "d3", "d4"]);
        expect((await tx.listDevices({ limit: 2 })).map((d) => d.id)).toEqual(["d1", "d2"]);
        expect((await tx.listDevices({ afterId: "d2", limit: 10 })).map((d) => d.id)).toEqual(["d3", "d4"]);
        expect((await tx.listDevices({ statuses: ["unenrolled"], limit: 10 })).map((d) => d.id)).toEqual([
          "d2",
        ]);
        expect(await tx.listDevices({ statuses: [], limit: 10 })).toEqual([]);
        expect((await tx.listDevices({ limit: 10 }))[0]).toEqual(device("d1"));
      });
    });

    it("lists the agents on a device, oldest first", async () => {
      await store().tx(async (tx) => {
        await tx.insertOwner(owner("o1"));
        await tx.insertDevice(device("d1"));
        await tx.insertDevice(device("d2"));
        await tx.insertAgent(agent("a2", "o1", "d1", { createdAt: T0 + 10 }));
        await tx.insertAgent(agent("a1", "o1", "d1"));
        await tx.insertAgent(agent("a3", "o1", "d2"));
      });
      await store().tx(async (tx) => {
        const list = await tx.listAgentsByDevice("d1");
        expect(list.map((a) => a.id)).toEqual(["a1", "a2"]);
        expect(list[0]).toEqual(agent("a1", "o1", "d1"));
        expect(await tx.listAgentsByDevice("nope")).toEqual([]);
      });
    });

    it("lockDevice serialises read-modify-write of one device across concurrent transactions", async () => {
      await store().tx((tx) => tx.insertDevice(device("d1", { postureAt: 0 })));
      await Promise.all(
        Array.from({ length: 6 }, () =>
          store().tx(async (tx) => {
            const d = await tx.lockDevice("d1");
            await new Promise((r) => setTimeout(r, 5));
            await tx.updateDevice({ ...d!, postureAt: (d!.postureAt ?? 0) + 1 });
          }),
        ),
      );
      expect((await store().tx((tx) => tx.getDevice("d1")))?.postureAt).toBe(6);
    });
  });

  describe("hook jti replay records", () => {
    it("records a jti once per source; a replay records nothing", async () => {
      expect(await store().tx((tx) => tx.recordHookJti("mdm:a", "j1", T0 + 100, T0))).toBe(true);
      expect(await store().tx((tx) => tx.recordHookJti("mdm:a", "j1", T0 + 500, T0 + 1))).toBe(false);
      expect(await store().tx((tx) => tx.recordHookJti("mdm:b", "j1", T0 + 100, T0))).toBe(true);
      expect(await store().tx((tx) => tx.recordHookJti("mdm:a", "j2", T0 + 100, T0))).toBe(true);
    });

    it("exactly one of many concurrent deliveries of one jti wins", async () => {
      const wins = await Promise.all(
        Array.from({ length: 8 }, () => store().tx((tx) => tx.recordHookJti("mdm:a", "same", T0 + 100, T0))),
      );
      expect(wins.filter(Boolean)).toHaveLength(1);
    });

    it("a rolled-back transaction leaves its jti unrecorded", async () => {
      const boom = new Error("boom");
      const err = await store()
        .tx(async (tx) => {
          await tx.recordHookJti("mdm:a", "j1", T0 + 100, T0);
          throw boom;
        })
        .catch((e: unknown) => e);
      expect(err).toBe(boom);
      expect(await store().tx((tx) => tx.recordHookJti("mdm:a", "j1", T0 + 100, T0))).toBe(true);
    });

    it("deletes expired records in bounded batches, earliest first", async () => {
      await store().tx(async (tx) => {
        for (let i = 0; i < 5; i++) await tx.recordHookJti("mdm:a", `old-${i}`, T0 + i, T0);
        await tx.recordHookJti("mdm:a", "live", T0 + 1_000, T0);
      });
      expect(await store().tx((tx) => tx.deleteExpiredHookJtis(T0 + 100, 3))).toBe(3);
      // The three earliest went first: old-0..2 can be recorded again, old-3 not yet.
      expect(await store().tx((tx) => tx.recordHookJti("mdm:a", "old-0", T0 + 2_000, T0))).toBe(true);
      expect(await store().tx((tx) => tx.recordHookJti("mdm:a", "old-3", T0 + 2_000, T0))).toBe(false);
      expect(await store().tx((tx) => tx.deleteExpiredHookJtis(T0 + 100, 10))).toBe(2);
      expect(await store().tx((tx) => tx.deleteExpiredHookJtis(T0 + 100, 10))).toBe(0);
      expect(await store().tx((tx) => tx.recordHookJti("mdm:a", "live", T0 + 2_000, T0))).toBe(false);
    });
  });
}
