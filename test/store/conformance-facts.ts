import { describe, expect, it } from "vitest";
import type { StoreTx } from "../../src/store/store.js";
import type { Agent, IssuanceFacts } from "../../src/store/types.js";
import type { StoreRef } from "./conformance.js";
import { binding, bytes, owner, seedAgent, T0 } from "./fixtures.js";

// getIssuanceFacts: what an issuance decides on, equal at every moment to the four rows
// read one by one -- whatever the backend keeps between calls (SQLite caches them).
// Every kind of change an issuance must see is made here and then read back, in tx()
// and in read(), and a change rolled back must leave no trace in what is read later.

/** The four rows as getAgent/getOwner/getDevice/getBinding read them, minus lastIssuedAt. */
async function oneByOne(tx: StoreTx, agentId: string): Promise<IssuanceFacts | null> {
  const full = await tx.getAgent(agentId);
  if (!full) return null;
  const { lastIssuedAt: _, ...agent } = full;
  return {
    agent,
    owner: await tx.getOwner(agent.ownerId),
    device: await tx.getDevice(agent.deviceId),
    binding: await tx.getBinding(agentId),
  };
}

class Rollback extends Error {}

export function factsTests(store: StoreRef): void {
  describe("getIssuanceFacts", () => {
    /** Reads the facts in tx() and in read(); both must equal the rows read one by one. */
    async function expectCurrent(agentId: string): Promise<IssuanceFacts | null> {
      const [inTx, expected] = await store().tx(async (tx) => [
        await tx.getIssuanceFacts(agentId),
        await oneByOne(tx, agentId),
      ]);
      expect(inTx).toEqual(expected);
      expect(await store().read((tx) => tx.getIssuanceFacts(agentId))).toEqual(expected);
      // Twice: a second call (served from a cache, where there is one) is the same.
      expect(await store().read((tx) => tx.getIssuanceFacts(agentId))).toEqual(expected);
      // And the store's own call for it (a cache hit without a transaction, where there is one).
      expect(await store().readIssuanceFacts(agentId)).toEqual(expected);
      expect(await store().readIssuanceFacts(agentId)).toEqual(expected);
      return inTx;
    }

    async function seeded(): Promise<Agent> {
      const a = await store().tx(async (tx) => {
        const a = await seedAgent(tx, "a1");
        await tx.upsertBinding(binding("a1", a.ownerId));
        return a;
      });
      await expectCurrent("a1");
      return a;
    }

    it("is null for an unknown agent, and the agent once it is inserted", async () => {
      expect(await store().read((tx) => tx.getIssuanceFacts("a1"))).toBeNull();
      expect(await store().readIssuanceFacts("a1")).toBeNull();
      expect(await store().tx((tx) => tx.getIssuanceFacts("a1"))).toBeNull();
      const a = await store().tx((tx) => seedAgent(tx, "a1"));
      const f = await expectCurrent("a1");
      const { lastIssuedAt: _, ...agent } = a;
      expect(f).toMatchObject({ agent, owner: { id: a.ownerId }, device: { id: a.deviceId }, binding: null });
      expect(f!.agent).not.toHaveProperty("lastIssuedAt");
    });

    it("hands out frozen objects", async () => {
      await seeded();
      const f = (await store().read((tx) => tx.getIssuanceFacts("a1")))!;
      for (const o of [f, f.agent, f.owner, f.device, f.binding]) expect(Object.isFrozen(o)).toBe(true);
      expect(() => {
        (f.agent as { status: string }).status = "retired";
      }).toThrow(TypeError);
    });

    const changes: [string, (tx: StoreTx, a: Agent) => Promise<void>, (f: IssuanceFacts) => unknown][] = [
      [
        "owner status",
        (tx, a) => tx.setOwnerStatus(a.ownerId, "deprovisioned", T0 + 9),
        (f) => f.owner!.status,
      ],
      [
        "owner replaced",
        (tx, a) => tx.updateOwner(owner(a.ownerId, { department: "ops", updatedAt: T0 + 9 })),
        (f) => f.owner!.department,
      ],
      [
        "device status",
        (tx, a) => tx.setDeviceStatus(a.deviceId, "unenrolled", T0 + 9),
        (f) => f.device!.status,
      ],
      [
        "device AK",
        (tx, a) => tx.setDeviceAk(a.deviceId, bytes("ak-2", 90), bytes("ak-name-2", 34), null, T0 + 9),
        (f) => f.device!.akPublic,
      ],
      [
        "device posture",
        async (tx, a) => {
          const d = (await tx.getDevice(a.deviceId))!;
          await tx.updateDevice({ ...d, compliant: true, postureAt: T0 + 9, updatedAt: T0 + 9 });
        },
        (f) => f.device!.compliant,
      ],
      [
        "binding renewed",
        (tx, a) => tx.upsertBinding(binding("a1", a.ownerId, { affirmedAt: T0 + 9, expiresAt: T0 + 99 })),
        (f) => f.binding!.expiresAt,
      ],
      ["agent status", (tx) => tx.setAgentStatus("a1", "suspended", T0 + 9, "leaver"), (f) => f.agent.status],
      [
        "agent moved to another owner",
        async (tx) => {
          await tx.insertOwner(owner("o-2"));
          await tx.setAgentOwner("a1", "o-2", T0 + 9);
        },
        (f) => [f.agent.ownerId, f.owner!.id],
      ],
    ];

    for (const [name, change, pick] of changes) {
      it(`sees a committed change: ${name}`, async () => {
        const a = await seeded();
        const before = pick((await store().read((tx) => tx.getIssuanceFacts("a1")))!);
        await store().tx((tx) => change(tx, a));
        const after = pick((await expectCurrent("a1"))!);
        expect(after).not.toEqual(before);
      });

      it(`forgets a change rolled back: ${name}`, async () => {
        const a = await seeded();
        const committed = (await store().read((tx) => tx.getIssuanceFacts("a1")))!;
        // Read inside the transaction that made the change (so a cache could keep it), then roll back.
        await expect(
          store().tx(async (tx) => {
            await change(tx, a);
            const inside = (await tx.getIssuanceFacts("a1"))!;
            expect(pick(inside)).not.toEqual(pick(committed));
            throw new Rollback();
          }),
        ).rejects.toBeInstanceOf(Rollback);
        expect(await expectCurrent("a1")).toEqual(committed);
      });
    }

    it("is not changed by markAgentIssued, which getAgent shows", async () => {
      await seeded();
      const before = await store().read((tx) => tx.getIssuanceFacts("a1"));
      await store().tx((tx) => tx.markAgentIssued("a1", T0 + 50));
      expect(await expectCurrent("a1")).toEqual(before);
      expect((await store().read((tx) => tx.getAgent("a1")))!.lastIssuedAt).toBe(T0 + 50);
    });

    it("sees a change made earlier in the same transaction", async () => {
      await seeded();
      const f = await store().tx(async (tx) => {
        await tx.getIssuanceFacts("a1");
        await tx.setAgentStatus("a1", "quarantined", T0 + 9, "mover");
        return tx.getIssuanceFacts("a1");
      });
      expect(f!.agent.status).toBe("quarantined");
      expect((await expectCurrent("a1"))!.agent.status).toBe("quarantined");
    });
  });
}
