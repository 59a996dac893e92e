import { describe, expect, it } from "vitest";
import type { StoreRef } from "./conformance.js";
import { agent, binding, device, expectCode, owner, scimUser, seedAgent, T0, transfer } from "./fixtures.js";

// Owner lifecycle records (issue 4): owner updates, agent status reasons and owner
// changes, paged agent listing, SCIM users and agent transfers.
export function ownerTests(store: StoreRef): void {
  describe("owner updates", () => {
    it("replaces the mutable fields, keeps issuer, subject and createdAt; lists in creation order", async () => {
      await store().tx(async (tx) => {
        await tx.insertOwner(owner("o2", { createdAt: T0 + 5 }));
        await tx.insertOwner(owner("o1", { groups: [] }));
      });
      expect((await store().tx((tx) => tx.getOwner("o1")))?.groups).toEqual([]);
      const changed = owner("o1", {
        issuer: "https://ignored.example.test",
        subject: "ignored",
        createdAt: 1,
        email: null,
        displayName: "Renamed",
        status: "suspended",
        manager: null,
        department: "Ops",
        groups: ["a", "b"],
        updatedAt: T0 + 50,
      });
      await store().tx((tx) => tx.updateOwner(changed));
      const o1 = await store().tx((tx) => tx.getOwner("o1"));
      expect(o1).toEqual({
        ...owner("o1"),
        email: null,
        displayName: "Renamed",
        status: "suspended",
        manager: null,
        department: "Ops",
        groups: ["a", "b"],
        updatedAt: T0 + 50,
      });
      expect((await store().tx((tx) => tx.listOwners())).map((o) => o.id)).toEqual(["o1", "o2"]);
      await expectCode(
        store().tx((tx) => tx.updateOwner(owner("nope"))),
        "owner.not_found",
      );
    });

    it("an owner written without groups reads back with none", async () => {
      const { groups: _, ...bare } = owner("o1");
      await store().tx((tx) => tx.insertOwner(bare));
      expect((await store().tx((tx) => tx.getOwner("o1")))?.groups).toEqual([]);
    });
  });

  describe("agent status reasons, owners and listing", () => {
    it("records the reason with the status; omitting it clears it", async () => {
      await store().tx((tx) => seedAgent(tx, "a1"));
      await store().tx((tx) => tx.setAgentStatus("a1", "suspended", T0 + 10, "owner.left"));
      expect(await store().tx((tx) => tx.getAgent("a1"))).toMatchObject({
        status: "suspended",
        statusReason: "owner.left",
        updatedAt: T0 + 10,
      });
      await store().tx((tx) => tx.setAgentStatus("a1", "active", T0 + 11));
      expect(await store().tx((tx) => tx.getAgent("a1"))).toMatchObject({
        status: "active",
        statusReason: null,
      });
    });

    it("an agent written without a reason reads back with null", async () => {
      await store().tx(async (tx) => {
        await tx.insertOwner(owner("o1"));
        await tx.insertDevice(device("d1"));
        const { statusReason: _, ...bare } = agent("a1", "o1", "d1");
        await tx.insertAgent(bare);
      });
      expect((await store().tx((tx) => tx.getAgent("a1")))?.statusReason).toBeNull();
    });

    it("moves an agent to another owner; unknown agent or owner is refused", async () => {
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await tx.insertOwner(owner("o2"));
      });
      await store().tx((tx) => tx.setAgentOwner("a1", "o2", T0 + 30));
      expect(await store().tx((tx) => tx.getAgent("a1"))).toMatchObject({
        ownerId: "o2",
        updatedAt: T0 + 30,
      });
      expect((await store().tx((tx) => tx.listAgentsByOwner("o2"))).map((a) => a.id)).toEqual(["a1"]);
      await expectCode(
        store().tx((tx) => tx.setAgentOwner("nope", "o2", T0)),
        "agent.not_found",
      );
      await expectCode(
        store().tx((tx) => tx.setAgentOwner("a1", "ghost", T0)),
        "store.conflict",
      );
    });

    it("lists agents in id order, by status, a page at a time", async () => {
      await store().tx(async (tx) => {
        await tx.insertOwner(owner("o1"));
        await tx.insertDevice(device("d1"));
        for (const [id, status] of [
          ["c", "active"],
          ["a", "dormant"],
          ["e", "retired"],
          ["b", "active"],
          ["d", "quarantined"],
        ] as const) {
          await tx.insertAgent(agent(id, "o1", "d1", { status }));
        }
      });
      await store().tx(async (tx) => {
        expect((await tx.listAgents({ limit: 10 })).map((a) => a.id)).toEqual(["a", "b", "c", "d", "e"]);
        expect((await tx.listAgents({ limit: 2 })).map((a) => a.id)).toEqual(["a", "b"]);
        expect((await tx.listAgents({ limit: 2, afterId: "b" })).map((a) => a.id)).toEqual(["c", "d"]);
        expect((await tx.listAgents({ limit: 10, afterId: "e" })).map((a) => a.id)).toEqual([]);
        const live = await tx.listAgents({ statuses: ["active", "dormant"], limit: 10 });
        expect(live.map((a) => a.id)).toEqual(["a", "b", "c"]);
        expect(live[0]).toEqual(agent("a", "o1", "d1", { status: "dormant" }));
        expect(
          (await tx.listAgents({ statuses: ["active"], afterId: "b", limit: 10 })).map((a) => a.id),
        ).toEqual(["c"]);
        expect(await tx.listAgents({ statuses: [], limit: 10 })).toEqual([]);
      });
    });
  });

  describe("SCIM users", () => {
    it("round-trips, finds by userName case-insensitively and by owner, lists and counts", async () => {
      const u1 = scimUser("u1", "o1");
      const u2 = scimUser("u2", "o2", { externalId: null, active: false, createdAt: T0 + 1 });
      await store().tx(async (tx) => {
        await tx.insertOwner(owner("o1"));
        await tx.insertOwner(owner("o2"));
        await tx.insertScimUser(u2);
        await tx.insertScimUser(u1);
      });
      await store().tx(async (tx) => {
        expect(await tx.getScimUser("u1")).toEqual(u1);
        expect(await tx.getScimUser("u2")).toEqual(u2);
        expect(await tx.getScimUser("nope")).toBeNull();
        expect(await tx.findScimUserByUserName("user.u1@example.TEST")).toEqual(u1);
        expect(await tx.findScimUserByUserName("nobody@example.test")).toBeNull();
        expect(await tx.findScimUserByOwner("o2")).toEqual(u2);
        expect(await tx.findScimUserByOwner("o3")).toBeNull();
        expect(await tx.countScimUsers()).toBe(2);
        expect((await tx.listScimUsers(0, 10)).map((u) => u.id)).toEqual(["u1", "u2"]);
        expect((await tx.listScimUsers(1, 10)).map((u) => u.id)).toEqual(["u2"]);
        expect(await tx.listScimUsers(0, 0)).toEqual([]);
      });
    });

    it("refuses a second user with the same userName in any case, or a second one for an owner", async () => {
      await store().tx(async (tx) => {
        await tx.insertOwner(owner("o1"));
        await tx.insertOwner(owner("o2"));
        await tx.insertScimUser(scimUser("u1", "o1", { userName: "Jane@Example.test" }));
      });
      await expectCode(
        store().tx((tx) => tx.insertScimUser(scimUser("u2", "o2", { userName: "jane@example.TEST" }))),
        "store.conflict",
      );
      await expectCode(
        store().tx((tx) => tx.insertScimUser(scimUser("u3", "o1", { userName: "other@example.test" }))),
        "store.conflict",
      );
      await expectCode(
        store().tx((tx) => tx.insertScimUser(scimUser("u4", "ghost"))),
        "store.conflict",
      );
      expect(await store().tx((tx) => tx.countScimUsers())).toBe(1);
    });

    it("updates everything but id, owner and creation; a taken userName is refused; deletes once", async () => {
      await store().tx(async (tx) => {
        await tx.insertOwner(owner("o1"));
        await tx.insertOwner(owner("o2"));
        await tx.insertScimUser(scimUser("u1", "o1"));
        await tx.insertScimUser(scimUser("u2", "o2"));
      });
      const next = scimUser("u1", "o2", {
        userName: "Renamed@example.test",
        externalId: "ext-new",
        active: false,
        resource: { userName: "Renamed@example.test", active: false },
        version: 2,
        createdAt: 5,
        updatedAt: T0 + 9,
      });
      await store().tx((tx) => tx.updateScimUser(next));
      expect(await store().tx((tx) => tx.getScimUser("u1"))).toEqual({
        ...next,
        ownerId: "o1",
        createdAt: T0,
      });
      expect(await store().tx((tx) => tx.findScimUserByUserName("renamed@EXAMPLE.test"))).not.toBeNull();
      expect(await store().tx((tx) => tx.findScimUserByUserName("user.u1@example.test"))).toBeNull();
      await expectCode(
        store().tx((tx) => tx.updateScimUser({ ...next, id: "u2", userName: "RENAMED@example.test" })),
        "store.conflict",
      );
      await expectCode(
        store().tx((tx) => tx.updateScimUser(scimUser("nope", "o1"))),
        "scim.not_found",
      );
      expect(await store().tx((tx) => tx.deleteScimUser("u1"))).toBe(true);
      expect(await store().tx((tx) => tx.deleteScimUser("u1"))).toBe(false);
      expect(await store().tx((tx) => tx.getScimUser("u1"))).toBeNull();
      expect(await store().tx((tx) => tx.getOwner("o1"))).not.toBeNull();
    });
  });

  describe("agent transfers", () => {
    async function seed() {
      await store().tx(async (tx) => {
        await seedAgent(tx, "a1");
        await tx.insertOwner(owner("o2"));
        await tx.insertOwner(owner("o3"));
        await tx.upsertBinding(binding("a1", "o-a1"));
      });
    }

    it("round-trips and lists an owner's offers, given and received, oldest first", async () => {
      await seed();
      const t1 = transfer("t1", "a1", "o-a1", "o2");
      const t2 = transfer("t2", "a1", "o2", "o3", { offeredBy: "cli", createdAt: T0 + 1 });
      await store().tx(async (tx) => {
        await tx.insertTransfer(t2);
        await tx.insertTransfer(t1);
      });
      await store().tx(async (tx) => {
        expect(await tx.getTransfer("t1")).toEqual(t1);
        expect(await tx.getTransfer("nope")).toBeNull();
        expect((await tx.listTransfersByOwner("o2")).map((t) => t.id)).toEqual(["t1", "t2"]);
        expect((await tx.listTransfersByOwner("o3")).map((t) => t.id)).toEqual(["t2"]);
        expect(await tx.listTransfersByOwner("o-nobody")).toEqual([]);
      });
      await expectCode(
        store().tx((tx) => tx.insertTransfer(t1)),
        "store.conflict",
      );
      await expectCode(
        store().tx((tx) => tx.insertTransfer(transfer("t3", "a1", "o-a1", "ghost"))),
        "store.conflict",
      );
    });

    it("closes a pending offer exactly once, never after it expired", async () => {
      await seed();
      await store().tx(async (tx) => {
        await tx.insertTransfer(transfer("t1", "a1", "o-a1", "o2"));
        await tx.insertTransfer(transfer("t2", "a1", "o-a1", "o2"));
      });
      const results = await Promise.all([
        store().tx((tx) => tx.closeTransfer("t1", "accepted", T0 + 10)),
        store().tx((tx) => tx.closeTransfer("t1", "cancelled", T0 + 11)),
      ]);
      expect(results).toEqual([true, false]);
      expect(await store().tx((tx) => tx.getTransfer("t1"))).toMatchObject({
        state: "accepted",
        completedAt: T0 + 10,
      });
      // expiresAt is exclusive: at T0 + 60_000 the offer has expired.
      expect(await store().tx((tx) => tx.closeTransfer("t2", "accepted", T0 + 60_000))).toBe(false);
      expect(await store().tx((tx) => tx.getTransfer("t2"))).toMatchObject({ state: "pending" });
      expect(await store().tx((tx) => tx.closeTransfer("nope", "accepted", T0))).toBe(false);
    });
  });
}
