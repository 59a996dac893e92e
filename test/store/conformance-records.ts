import { describe, expect, it } from "vitest";
import type { StoreRef } from "./conformance.js";
import {
  agent,
  binding,
  bytes,
  caCertificate,
  device,
  expectCode,
  owner,
  seedAgent,
  T0,
} from "./fixtures.js";

// Round trips: every field of every record comes back as written, nulls as null,
// Buffers byte for byte, booleans as booleans.
export function recordTests(store: StoreRef): void {
  describe("owners", () => {
    it("round-trips every field, including nulls", async () => {
      const full = owner("o1");
      const sparse = owner("o2", { email: null, displayName: null, manager: null, department: null });
      await store().tx(async (tx) => {
        await tx.insertOwner(full);
        await tx.insertOwner(sparse);
      });
      await store().tx(async (tx) => {
        expect(await tx.getOwner("o1")).toEqual(full);
        expect(await tx.getOwner("o2")).toEqual(sparse);
        expect(await tx.getOwner("nope")).toBeNull();
        expect(await tx.findOwnerBySubject(full.issuer, full.subject)).toEqual(full);
        expect(await tx.findOwnerBySubject("https://other.example.test", full.subject)).toBeNull();
      });
    });

    it("changes status and updatedAt; unknown owner is owner.not_found", async () => {
      await store().tx((tx) => tx.insertOwner(owner("o1")));
      await store().tx((tx) => tx.setOwnerStatus("o1", "deprovisioned", T0 + 99));
      const o = await store().tx((tx) => tx.getOwner("o1"));
      expect(o).toEqual(owner("o1", { status: "deprovisioned", updatedAt: T0 + 99 }));
      await expectCode(
        store().tx((tx) => tx.setOwnerStatus("nope", "active", T0)),
        "owner.not_found",
      );
    });

    it("refuses a second owner with the same id or the same (issuer, subject)", async () => {
      await store().tx((tx) => tx.insertOwner(owner("o1")));
      await expectCode(
        store().tx((tx) => tx.insertOwner(owner("o1", { subject: "other" }))),
        "store.conflict",
      );
      await expectCode(
        store().tx((tx) => tx.insertOwner(owner("o2", { subject: "sub-o1" }))),
        "store.conflict",
      );
    });
  });

  describe("devices", () => {
    it("round-trips TPM and managed devices, Buffers and booleans", async () => {
      const tpm = device("d1", { assignedOwnerId: "someone" });
      const managed = device("d2", {
        kind: "managed",
        ekPubHash: null,
        ekCertIssuer: null,
        akName: null,
        akPublic: null,
        serial: null,
        mdmId: null,
        managed: false,
        compliant: true,
      });
      await store().tx(async (tx) => {
        await tx.insertDevice(tpm);
        await tx.insertDevice(managed);
      });
      await store().tx(async (tx) => {
        const d1 = await tx.getDevice("d1");
        expect(d1).toEqual(tpm);
        expect(Buffer.isBuffer(d1?.ekPubHash)).toBe(true);
        expect(await tx.getDevice("d2")).toEqual(managed);
        expect(await tx.getDevice("nope")).toBeNull();
        expect(await tx.findDeviceByEkHash(bytes("ek-d1"))).toEqual(tpm);
        expect(await tx.findDeviceByEkHash(bytes("ek-unknown"))).toBeNull();
      });
    });

    it("changes status; unknown device is device.not_found; one device per EK", async () => {
      await store().tx((tx) => tx.insertDevice(device("d1")));
      await store().tx((tx) => tx.setDeviceStatus("d1", "unenrolled", T0 + 7));
      const d = await store().tx((tx) => tx.getDevice("d1"));
      expect(d).toMatchObject({ status: "unenrolled", updatedAt: T0 + 7 });
      await expectCode(
        store().tx((tx) => tx.setDeviceStatus("nope", "active", T0)),
        "device.not_found",
      );
      await expectCode(
        store().tx((tx) => tx.insertDevice(device("d2", { ekPubHash: bytes("ek-d1") }))),
        "store.conflict",
      );
    });
  });

  describe("agents and bindings", () => {
    it("round-trips agents and lists them by owner in creation order", async () => {
      await store().tx(async (tx) => {
        await tx.insertOwner(owner("o1"));
        await tx.insertOwner(owner("o2"));
        await tx.insertDevice(device("d1"));
        await tx.insertAgent(agent("a2", "o1", "d1", { createdAt: T0 + 10 }));
        await tx.insertAgent(agent("a1", "o1", "d1", { lastIssuedAt: T0 + 5 }));
        await tx.insertAgent(agent("a3", "o2", "d1"));
      });
      await store().tx(async (tx) => {
        expect(await tx.getAgent("a1")).toEqual(agent("a1", "o1", "d1", { lastIssuedAt: T0 + 5 }));
        expect(await tx.getAgent("nope")).toBeNull();
        const list = await tx.listAgentsByOwner("o1");
        expect(list.map((a) => a.id)).toEqual(["a1", "a2"]);
        expect(list[1]).toEqual(agent("a2", "o1", "d1", { createdAt: T0 + 10 }));
        expect(await tx.listAgentsByOwner("nobody")).toEqual([]);
      });
    });

    it("refuses a second agent with the same name for the same owner, not for another", async () => {
      await store().tx(async (tx) => {
        await tx.insertOwner(owner("o1"));
        await tx.insertOwner(owner("o2"));
        await tx.insertDevice(device("d1"));
        await tx.insertAgent(agent("a1", "o1", "d1", { name: "builder" }));
      });
      await expectCode(
        store().tx((tx) => tx.insertAgent(agent("a2", "o1", "d1", { name: "builder" }))),
        "store.conflict",
      );
      await store().tx((tx) => tx.insertAgent(agent("a3", "o2", "d1", { name: "builder" })));
    });

    it("refuses an agent whose owner or device does not exist", async () => {
      await store().tx((tx) => tx.insertDevice(device("d1")));
      await expectCode(
        store().tx((tx) => tx.insertAgent(agent("a1", "ghost", "d1"))),
        "store.conflict",
      );
      expect(await store().tx((tx) => tx.getAgent("a1"))).toBeNull();
    });

    it("sets status and last issuance; unknown agent is agent.not_found", async () => {
      await store().tx((tx) => seedAgent(tx, "a1"));
      await store().tx(async (tx) => {
        await tx.setAgentStatus("a1", "quarantined", T0 + 20);
        await tx.markAgentIssued("a1", T0 + 21);
      });
      const a = await store().tx((tx) => tx.getAgent("a1"));
      expect(a).toMatchObject({ status: "quarantined", updatedAt: T0 + 20, lastIssuedAt: T0 + 21 });
      await expectCode(
        store().tx((tx) => tx.setAgentStatus("nope", "active", T0)),
        "agent.not_found",
      );
      await expectCode(
        store().tx((tx) => tx.markAgentIssued("nope", T0)),
        "agent.not_found",
      );
    });

    it("inserts a binding, then replaces it on upsert", async () => {
      await store().tx((tx) => seedAgent(tx, "a1"));
      expect(await store().tx((tx) => tx.getBinding("a1"))).toBeNull();
      const first = binding("a1", "o-a1");
      await store().tx((tx) => tx.upsertBinding(first));
      expect(await store().tx((tx) => tx.getBinding("a1"))).toEqual(first);
      const again = binding("a1", "o-a1", { affirmedAt: T0 + 1000, authTime: T0 + 900, expiresAt: T0 + 5e9 });
      await store().tx((tx) => tx.upsertBinding(again));
      expect(await store().tx((tx) => tx.getBinding("a1"))).toEqual(again);
    });
  });

  describe("CA certificates", () => {
    it("round-trips, lists in creation order and moves slots", async () => {
      const root = caCertificate("aa01", { role: "root", createdAt: T0 - 1 });
      const inter = caCertificate("bb02");
      await store().tx(async (tx) => {
        await tx.insertCaCertificate(inter);
        await tx.insertCaCertificate(root);
      });
      expect(await store().tx((tx) => tx.listCaCertificates())).toEqual([root, inter]);
      await store().tx((tx) => tx.setCaSlot("bb02", "previous"));
      const list = await store().tx((tx) => tx.listCaCertificates());
      expect(list[1]).toEqual({ ...inter, slot: "previous" });
      await expectCode(
        store().tx((tx) => tx.setCaSlot("nope", "next")),
        "request.not_found",
      );
      await expectCode(
        store().tx((tx) => tx.insertCaCertificate(caCertificate("aa01"))),
        "store.conflict",
      );
    });
  });
}
