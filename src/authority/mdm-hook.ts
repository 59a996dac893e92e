import { appendAudit } from "../audit/index.js";
import type { Config } from "../config/schema.js";
import { type MdmEvent, type MdmEventType, parseMdmEvent } from "../devices/mdm-events.js";
import type { MdmVerifier, VerifiedMdmJws } from "../devices/mdm-verifier.js";
import { MayflyError } from "../errors/index.js";
import type { Clock, Random } from "../runtime/clock.js";
import type { Store, StoreTx } from "../store/store.js";
import type { Device } from "../store/types.js";
import { recordDenial } from "./deny.js";
import { unenrolDevice } from "./device-inventory.js";

// POST /v1/hooks/mdm (issue 8): verify the JWS -> parse the event -> apply it in one
// transaction that also records its jti. Events apply in event-time order: each device
// keeps the time of the last event applied to it, an older event is refused
// (mdm.out_of_order) and one of the same time that changes nothing is accepted as a
// duplicate, so re-sending an event is harmless. Any failure: one deny event, nothing else
// written (the jti included, so a refused event may be sent again once fixed).

export interface MdmHookDeps {
  store: Store;
  clock: Clock;
  random: Random;
  config: Config;
  /** null: no JWKS configured, the hook answers mdm.not_configured. */
  mdm?: MdmVerifier | null;
}

export interface MdmHookResult {
  event: MdmEventType;
  /** false: a duplicate of the event last applied (same time, same state); nothing changed. */
  applied: boolean;
  deviceId: string;
  mdmId: string;
  occurredAt: number;
  /** The device was created by this event. */
  created: boolean;
  /** Agents suspended by an unenrolment. */
  suspended: string[];
}

const denials = new WeakSet<object>();

/** Whether receiveMdmEvent already wrote the audit event for this error. */
export function mdmDenialRecorded(e: unknown): boolean {
  return typeof e === "object" && e !== null && denials.has(e);
}

export function mdmSource(config: Config): string {
  return `mdm:${config.mdm.name}`;
}

const iso = (t: number) => new Date(t).toISOString();

/** The fields an MDM event speaks for: two devices equal in these are the same posture. */
const MDM_FIELDS = [
  "status",
  "managed",
  "compliant",
  "complianceReason",
  "serial",
  "platform",
  "assignedUser",
  "mdmId",
  "postureAt",
  "mdmEventAt",
] as const;

function changes(before: Device | null, after: Device): Record<string, { from: unknown; to: unknown }> {
  const out: Record<string, { from: unknown; to: unknown }> = {};
  for (const k of MDM_FIELDS) {
    const from = before ? (before[k] ?? null) : null;
    const to = after[k] ?? null;
    if (from !== to) out[k] = { from, to };
  }
  const ekFrom = before?.ekPubHash?.toString("hex") ?? null;
  const ekTo = after.ekPubHash?.toString("hex") ?? null;
  if (ekFrom !== ekTo) out.ekPubHash = { from: ekFrom, to: ekTo };
  return out;
}

/**
 * Receives one event: the body as sent (a compact JWS). Throws a MayflyError whose deny
 * event is already recorded (mdmDenialRecorded).
 */
export async function receiveMdmEvent(deps: MdmHookDeps, body: unknown): Promise<MdmHookResult> {
  const { store, clock, config } = deps;
  const now = clock.now();
  let actor: string | null = null;
  let subject: string | null = null;
  const data: Record<string, unknown> = {};
  try {
    if (!deps.mdm) {
      throw new MayflyError("mdm.not_configured", "set mdm.jwksFile or mdm.jwksUrl to accept MDM events");
    }
    const v = await deps.mdm.verify(body);
    // Signed by the MDM from here on: the deny names it.
    actor = mdmSource(config);
    Object.assign(data, { jti: v.jti, kid: v.kid, alg: v.alg });
    const ev = parseMdmEvent(v.claims, v.issuedAt);
    subject = `mdm-device:${ev.mdmId}`;
    Object.assign(data, { event: ev.type, occurredAt: iso(ev.occurredAt) });
    if (ev.occurredAt > now + config.mdm.clockSkew) {
      throw new MayflyError("mdm.event_not_yet_valid", `occurredAt ${iso(ev.occurredAt)} is in the future`, {
        field: "occurredAt",
      });
    }
    return await store.tx((tx) => apply(tx, deps, ev, v, now));
  } catch (err) {
    const me = await recordDenial(store, clock, err, { type: "mdm.event", actor, subject, data });
    denials.add(me);
    throw me;
  }
}

/** The device the event is about, locked; null for an enrolment of a device not yet known. */
async function target(tx: StoreTx, ev: MdmEvent): Promise<Device | null> {
  const byMdm = await tx.findDeviceByMdmId(ev.mdmId);
  let found = byMdm;
  if (ev.type === "device.enrolled" && ev.ekPubHash) {
    const byEk = await tx.findDeviceByEkHash(ev.ekPubHash);
    const owner = byEk?.mdmId ?? null;
    if (byEk && ((byMdm && byMdm.id !== byEk.id) || (owner !== null && owner !== ev.mdmId))) {
      throw new MayflyError(
        "mdm.device_conflict",
        `EK ${ev.ekPubHash.toString("hex")} belongs to device ${byEk.id}` +
          (owner === null ? "" : ` (MDM id ${JSON.stringify(owner)})`) +
          (byMdm ? `, not to ${byMdm.id}` : ""),
        { field: "ekPubHash" },
      );
    }
    found ??= byEk;
  }
  if (!found) {
    if (ev.type === "device.enrolled") return null;
    throw new MayflyError("mdm.device_unknown", `no device with MDM id ${JSON.stringify(ev.mdmId)}`, {
      field: "mdmId",
    });
  }
  const locked = await tx.lockDevice(found.id);
  // Changed between the lookup and the lock (another replica's event): let the sender retry.
  if (!locked || (locked.mdmId !== null && locked.mdmId !== ev.mdmId)) {
    throw new MayflyError("store.conflict", `device ${found.id} changed while the event was applied; retry`);
  }
  return locked;
}

function nextState(cur: Device | null, ev: MdmEvent, now: number, random: Random): Device {
  const t = ev.occurredAt;
  if (ev.type === "device.enrolled") {
    // A new EK is a new TPM: the AK activated in the old one means nothing for it.
    const ekChanged = !!(cur?.ekPubHash && ev.ekPubHash && !cur.ekPubHash.equals(ev.ekPubHash));
    return {
      id: cur?.id ?? `dev_${random.bytes(12).toString("base64url")}`,
      kind: cur?.kind ?? "managed",
      status: "active",
      ekPubHash: ev.ekPubHash ?? cur?.ekPubHash ?? null,
      ekCertIssuer: ekChanged ? null : (cur?.ekCertIssuer ?? null),
      akName: ekChanged ? null : (cur?.akName ?? null),
      akPublic: ekChanged ? null : (cur?.akPublic ?? null),
      akQualifiedName: ekChanged ? null : (cur?.akQualifiedName ?? null),
      serial: ev.serial ?? cur?.serial ?? null,
      mdmId: ev.mdmId,
      managed: true,
      compliant: ev.compliant,
      complianceReason: ev.reason,
      assignedOwnerId: cur?.assignedOwnerId ?? null,
      assignedUser: ev.assignedUser === undefined ? (cur?.assignedUser ?? null) : ev.assignedUser,
      platform: ev.platform ?? cur?.platform ?? null,
      postureAt: t,
      mdmEventAt: t,
      createdAt: cur?.createdAt ?? now,
      updatedAt: now,
    };
  }
  const d = cur!;
  if (ev.type === "device.compliance_changed") {
    return {
      ...d,
      compliant: ev.compliant,
      complianceReason: ev.reason,
      postureAt: t,
      mdmEventAt: t,
      updatedAt: now,
    };
  }
  return {
    ...d,
    status: "unenrolled",
    managed: false,
    compliant: false,
    complianceReason: ev.reason,
    postureAt: t,
    mdmEventAt: t,
    updatedAt: now,
  };
}

/**
 * Event-time order: "apply" a newer event (or the first); "duplicate" for one of the same
 * time that changes nothing; anything else would let an older statement override a newer
 * one, and is refused.
 */
function order(cur: Device | null, ev: MdmEvent, next: Device): "apply" | "duplicate" {
  const last = cur?.mdmEventAt ?? null;
  if (cur === null || last === null || ev.occurredAt > last) return "apply";
  if (ev.occurredAt === last && Object.keys(changes(cur, next)).length === 0 && sameEk(cur, next)) {
    return "duplicate";
  }
  throw new MayflyError(
    "mdm.out_of_order",
    `device ${cur.id} already has the MDM's event of ${iso(last)}; this ${ev.type} is of ${iso(ev.occurredAt)}`,
    { field: "occurredAt" },
  );
}

function sameEk(a: Device, b: Device): boolean {
  return a.ekPubHash === null
    ? b.ekPubHash === null
    : b.ekPubHash !== null && a.ekPubHash.equals(b.ekPubHash);
}

async function apply(
  tx: StoreTx,
  deps: MdmHookDeps,
  ev: MdmEvent,
  v: VerifiedMdmJws,
  now: number,
): Promise<MdmHookResult> {
  const { clock, config } = deps;
  const source = mdmSource(config);
  // First, so that a replay of an applied event is called a replay, not a duplicate.
  if (!(await tx.recordHookJti(source, ev.jti, v.replayWindowEnd, now))) {
    throw new MayflyError("mdm.replayed", `event ${JSON.stringify(ev.jti)} was already received`, {
      field: "jti",
    });
  }
  const cur = await target(tx, ev);
  const next = nextState(cur, ev, now, deps.random);
  const result: MdmHookResult = {
    event: ev.type,
    applied: order(cur, ev, next) === "apply",
    deviceId: next.id,
    mdmId: ev.mdmId,
    occurredAt: ev.occurredAt,
    created: cur === null,
    suspended: [],
  };
  const diff = changes(cur, next);
  if (result.applied) {
    if (ev.type === "device.unenrolled") {
      result.suspended = (
        await unenrolDevice(tx, clock, next, source, { jti: ev.jti, reason: ev.reason })
      ).suspended;
    } else {
      if (cur) await tx.updateDevice(next);
      else await tx.insertDevice(next);
      if (ev.type === "device.enrolled") await registerEk(tx, clock, source, cur, next);
    }
  }
  await appendAudit(tx, clock, {
    type: `mdm.${ev.type}`,
    decision: "allow",
    code: null,
    actor: source,
    subject: `device:${next.id}`,
    data: {
      jti: ev.jti,
      mdmId: ev.mdmId,
      occurredAt: iso(ev.occurredAt),
      applied: result.applied,
      created: result.created,
      changes: diff,
      ...(ev.reason ? { reason: ev.reason } : {}),
    },
  });
  await tx.deleteExpiredHookJtis(now, 100);
  return result;
}

/**
 * The MDM vouches for the device's EK: activation accepts it without a manufacturer
 * chain (and links to this device by the EK hash). A replaced EK's registration goes,
 * if this MDM made it.
 */
async function registerEk(tx: StoreTx, clock: Clock, source: string, cur: Device | null, next: Device) {
  const old = cur?.ekPubHash ?? null;
  if (old && next.ekPubHash && !old.equals(next.ekPubHash)) {
    const reg = await tx.getEkRegistration(old);
    if (reg?.source === source && (await tx.deleteEkRegistration(old))) {
      await appendAudit(tx, clock, {
        type: "device.ek.unregister",
        decision: "allow",
        code: null,
        actor: source,
        subject: `ek:${old.toString("hex")}`,
        data: { deviceId: next.id, source, reason: "ek.replaced" },
      });
    }
  }
  if (!next.ekPubHash) return;
  const existing = await tx.getEkRegistration(next.ekPubHash);
  if (existing?.source === source) return;
  const note = `MDM device ${next.mdmId}${next.serial ? `, serial ${next.serial}` : ""}`;
  await tx.upsertEkRegistration({ ekPubHash: next.ekPubHash, source, note, createdAt: clock.now() });
  await appendAudit(tx, clock, {
    type: "device.ek.register",
    decision: "allow",
    code: null,
    actor: source,
    subject: `ek:${next.ekPubHash.toString("hex")}`,
    data: { deviceId: next.id, note, replacedSource: existing?.source ?? null },
  });
}
