import { appendAudit } from "../audit/index.js";
import { setAgentState } from "../owners/lifecycle.js";
import type { Clock } from "../runtime/clock.js";
import type { StoreTx } from "../store/store.js";
import type { Device } from "../store/types.js";

// The device inventory's state changes shared by the MDM hook and `mayfly device …`, as
// steps inside the caller's transaction: the device, its EK registration and every agent
// it stops commit (and are audited) together, so the next issuance's recording
// transaction sees all of it or none of it.

export interface Unenrolment {
  /** Agents suspended now (reason device.unenrolled). */
  suspended: string[];
  /** The EK registration removed, if there was one: activation refuses the EK from now on. */
  ekRegistrationRemoved: { source: string } | null;
}

/**
 * Writes `next` (status unenrolled) over the device, removes its EK registration, so the
 * EK cannot activate again on the strength of it, and suspends every agent on it that is
 * not retired or already suspended. An agent suspended here comes back only by its owner's
 * re-affirmation or an administrator, and only issues again once the device is enrolled.
 */
export async function unenrolDevice(
  tx: StoreTx,
  clock: Clock,
  next: Device,
  actor: string,
  data: Record<string, unknown> = {},
): Promise<Unenrolment> {
  await tx.updateDevice(next);
  let ekRegistrationRemoved: Unenrolment["ekRegistrationRemoved"] = null;
  if (next.ekPubHash) {
    const reg = await tx.getEkRegistration(next.ekPubHash);
    if (reg && (await tx.deleteEkRegistration(next.ekPubHash))) {
      ekRegistrationRemoved = { source: reg.source };
      await appendAudit(tx, clock, {
        type: "device.ek.unregister",
        decision: "allow",
        code: null,
        actor,
        subject: `ek:${next.ekPubHash.toString("hex")}`,
        data: { deviceId: next.id, source: reg.source, reason: "device.unenrolled" },
      });
    }
  }
  const suspended: string[] = [];
  for (const agent of await tx.listAgentsByDevice(next.id)) {
    if (agent.status === "retired" || agent.status === "suspended") continue;
    if (
      await setAgentState(tx, clock, agent, "suspended", "device.unenrolled", actor, { deviceId: next.id })
    ) {
      suspended.push(agent.id);
    }
  }
  await appendAudit(tx, clock, {
    type: "device.unenrol",
    decision: "allow",
    code: null,
    actor,
    subject: `device:${next.id}`,
    data: { ...data, agents: suspended, ekRegistrationRemoved: ekRegistrationRemoved?.source ?? null },
  });
  return { suspended, ekRegistrationRemoved };
}

/** A device as the inventory shows it (CLI --json, hook answers): binary as hex, times as ISO 8601. */
export function deviceView(d: Device): Record<string, unknown> {
  const iso = (t: number | null | undefined) =>
    t === null || t === undefined ? null : new Date(t).toISOString();
  return {
    id: d.id,
    kind: d.kind,
    status: d.status,
    managed: d.managed,
    compliant: d.compliant,
    complianceReason: d.complianceReason ?? null,
    mdmId: d.mdmId,
    serial: d.serial,
    platform: d.platform ?? null,
    assignedUser: d.assignedUser ?? null,
    assignedOwnerId: d.assignedOwnerId,
    ekPubHash: d.ekPubHash?.toString("hex") ?? null,
    ekCertIssuer: d.ekCertIssuer,
    akName: d.akName?.toString("hex") ?? null,
    activated: d.akPublic !== null,
    postureAt: iso(d.postureAt),
    mdmEventAt: iso(d.mdmEventAt),
    createdAt: iso(d.createdAt),
    updatedAt: iso(d.updatedAt),
  };
}
