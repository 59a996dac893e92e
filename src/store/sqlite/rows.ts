import { MayflyError } from "../../errors/index.js";
import type {
  Activation,
  Agent,
  AgentTransfer,
  AuditDecision,
  AuditEvent,
  AuditLink,
  Binding,
  CaCertificate,
  CaJournalEntry,
  CertificateRecord,
  Device,
  EkRegistration,
  Owner,
  ScimUser,
} from "../types.js";

// Column lists and row -> record mappers, one per table. Rows come back from
// better-sqlite3 as plain objects: BIGINT as number (epoch ms fits in 2^53), BLOB as
// Buffer, BOOLEAN as 0/1.

type Row = Record<string, unknown>;

const str = (v: unknown) => v as string;
const optStr = (v: unknown) => (v === null ? null : (v as string));
const num = (v: unknown) => v as number;
const optNum = (v: unknown) => (v === null ? null : (v as number));
const buf = (v: unknown) => v as Buffer;
const optBuf = (v: unknown) => (v === null ? null : (v as Buffer));

/** A JSON column the store itself wrote; anything else there is corruption. */
function jsonValue(v: unknown, what: string): unknown {
  try {
    return JSON.parse(str(v));
  } catch (e) {
    throw new MayflyError("internal.error", `${what} is not valid JSON`, { cause: e });
  }
}
function jsonStrings(v: unknown, what: string): string[] {
  const a = jsonValue(v, what);
  if (!Array.isArray(a) || !a.every((x) => typeof x === "string")) {
    throw new MayflyError("internal.error", `${what} is not a JSON array of strings`);
  }
  return a;
}

export const OWNER_COLS =
  "id, issuer, subject, email, display_name, status, manager, department, groups, created_at, updated_at";
export function ownerFromRow(r: Row): Owner {
  return {
    id: str(r.id),
    issuer: str(r.issuer),
    subject: str(r.subject),
    email: optStr(r.email),
    displayName: optStr(r.display_name),
    status: str(r.status) as Owner["status"],
    manager: optStr(r.manager),
    department: optStr(r.department),
    groups: jsonStrings(r.groups, "owners.groups"),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export const DEVICE_COLS =
  "id, kind, status, ek_pub_hash, ek_cert_issuer, ak_name, ak_public, serial, mdm_id, managed, compliant, " +
  "assigned_owner_id, created_at, updated_at, assigned_user, platform, compliance_reason, posture_at, " +
  "mdm_event_at, ak_qualified_name";
export function deviceFromRow(r: Row): Device {
  return {
    id: str(r.id),
    kind: str(r.kind) as Device["kind"],
    status: str(r.status) as Device["status"],
    ekPubHash: optBuf(r.ek_pub_hash),
    ekCertIssuer: optStr(r.ek_cert_issuer),
    akName: optBuf(r.ak_name),
    akPublic: optBuf(r.ak_public),
    serial: optStr(r.serial),
    mdmId: optStr(r.mdm_id),
    managed: r.managed === 1,
    compliant: r.compliant === 1,
    assignedOwnerId: optStr(r.assigned_owner_id),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
    assignedUser: optStr(r.assigned_user),
    platform: optStr(r.platform),
    complianceReason: optStr(r.compliance_reason),
    postureAt: optNum(r.posture_at),
    mdmEventAt: optNum(r.mdm_event_at),
    akQualifiedName: optBuf(r.ak_qualified_name),
  };
}

export const INSERT_DEVICE_SQL = `INSERT INTO devices (${DEVICE_COLS}) VALUES (${DEVICE_COLS.split(",")
  .map(() => "?")
  .join(", ")})`;
/** The device's columns in DEVICE_COLS order; `bool` binds a boolean (0/1 in SQLite, true/false in PostgreSQL). */
export function deviceParams(d: Device, bool: (b: boolean) => unknown): unknown[] {
  return [
    d.id,
    d.kind,
    d.status,
    d.ekPubHash,
    d.ekCertIssuer,
    d.akName,
    d.akPublic,
    d.serial,
    d.mdmId,
    bool(d.managed),
    bool(d.compliant),
    d.assignedOwnerId,
    d.createdAt,
    d.updatedAt,
    d.assignedUser ?? null,
    d.platform ?? null,
    d.complianceReason ?? null,
    d.postureAt ?? null,
    d.mdmEventAt ?? null,
    d.akQualifiedName ?? null,
  ];
}

// Every column but id and created_at, for StoreTx.updateDevice.
export const UPDATE_DEVICE_SQL =
  "UPDATE devices SET kind = ?, status = ?, ek_pub_hash = ?, ek_cert_issuer = ?, ak_name = ?, ak_public = ?, " +
  "serial = ?, mdm_id = ?, managed = ?, compliant = ?, assigned_owner_id = ?, updated_at = ?, " +
  "assigned_user = ?, platform = ?, compliance_reason = ?, posture_at = ?, mdm_event_at = ?, " +
  "ak_qualified_name = ? WHERE id = ?";
export function updateDeviceParams(d: Device, bool: (b: boolean) => unknown): unknown[] {
  const [id, ...rest] = deviceParams(d, bool);
  // deviceParams is in DEVICE_COLS order; without id, created_at is at index 11.
  rest.splice(11, 1);
  return [...rest, id];
}

/** StoreTx.listDevices as SQL; sql null when the answer is empty without asking. */
export function listDevicesQuery(q: {
  statuses?: readonly string[];
  afterId?: string | null;
  limit: number;
}): {
  sql: string | null;
  params: unknown[];
} {
  const where: string[] = [];
  const params: unknown[] = [];
  if (q.statuses) {
    if (q.statuses.length === 0) return { sql: null, params };
    where.push(`status IN (${q.statuses.map(() => "?").join(", ")})`);
    params.push(...q.statuses);
  }
  if (q.afterId !== undefined && q.afterId !== null) {
    where.push("id > ?");
    params.push(q.afterId);
  }
  const sql =
    `SELECT ${DEVICE_COLS} FROM devices${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ` +
    "ORDER BY id LIMIT ?";
  return { sql, params: [...params, Math.max(0, Math.floor(q.limit))] };
}

// hook_jtis: a replayed (source, jti) inserts nothing.
export const RECORD_HOOK_JTI_SQL =
  "INSERT INTO hook_jtis (source, jti, expires_at, created_at) VALUES (?, ?, ?, ?) " +
  "ON CONFLICT (source, jti) DO NOTHING";
// The CA's own secrets: insert-or-keep, then read what is stored (the first value wins).
export const ENSURE_SECRET_SQL =
  "INSERT INTO server_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING";
export const GET_SECRET_SQL = "SELECT value FROM server_secrets WHERE name = ?";
export const DELETE_EXPIRED_HOOK_JTIS_SQL =
  "DELETE FROM hook_jtis WHERE (source, jti) IN (SELECT source, jti FROM hook_jtis " +
  "WHERE expires_at < ? ORDER BY expires_at LIMIT ?)";

export const AGENT_COLS =
  "id, name, owner_id, device_id, spiffe_id, purpose, profile, status, status_reason, expires_at, " +
  "last_issued_at, created_at, updated_at";
export function agentFromRow(r: Row): Agent {
  return {
    id: str(r.id),
    name: str(r.name),
    ownerId: str(r.owner_id),
    deviceId: str(r.device_id),
    spiffeId: str(r.spiffe_id),
    purpose: str(r.purpose),
    profile: str(r.profile),
    status: str(r.status) as Agent["status"],
    statusReason: optStr(r.status_reason),
    expiresAt: num(r.expires_at),
    lastIssuedAt: optNum(r.last_issued_at),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export const BINDING_COLS =
  "agent_id, owner_id, token_issuer, token_subject, auth_time, affirmed_at, expires_at";
export function bindingFromRow(r: Row): Binding {
  return {
    agentId: str(r.agent_id),
    ownerId: str(r.owner_id),
    tokenIssuer: str(r.token_issuer),
    tokenSubject: str(r.token_subject),
    authTime: num(r.auth_time),
    affirmedAt: num(r.affirmed_at),
    expiresAt: num(r.expires_at),
  };
}

export const CERTIFICATE_COLS =
  "issuer_key_id, serial, agent_id, challenge_nonce, not_before, not_after, der, fingerprint, created_at";
export function certificateFromRow(r: Row): CertificateRecord {
  return {
    issuerKeyId: buf(r.issuer_key_id),
    serial: buf(r.serial),
    agentId: str(r.agent_id),
    challengeNonce: optBuf(r.challenge_nonce),
    notBefore: num(r.not_before),
    notAfter: num(r.not_after),
    der: buf(r.der),
    fingerprint: buf(r.fingerprint),
    createdAt: num(r.created_at),
  };
}

export const CA_COLS = "id, role, slot, key_label, der, not_before, not_after, created_at";
export function caFromRow(r: Row): CaCertificate {
  return {
    id: str(r.id),
    role: str(r.role) as CaCertificate["role"],
    slot: str(r.slot) as CaCertificate["slot"],
    keyLabel: str(r.key_label),
    der: buf(r.der),
    notBefore: num(r.not_before),
    notAfter: num(r.not_after),
    createdAt: num(r.created_at),
  };
}

export const CA_JOURNAL_COLS = "seq, rotation_id, kind, step, at, data";
export function caJournalFromRow(r: Row): CaJournalEntry {
  const data = jsonValue(r.data, "ca_journal.data");
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new MayflyError("internal.error", "ca_journal.data is not a JSON object");
  }
  return {
    // PostgreSQL's identity column may come back as a string; the value fits in 2^53.
    seq: Number(r.seq),
    rotationId: str(r.rotation_id),
    kind: str(r.kind) as CaJournalEntry["kind"],
    step: str(r.step),
    at: Number(r.at),
    data: data as Record<string, unknown>,
  };
}

export const ACTIVATION_COLS =
  "id, ek_pub_hash, ek_public, ek_cert_issuer, trusted_via, ak_public, ak_name, secret_hash, state, " +
  "device_id, created_at, expires_at, completed_at";
export function activationFromRow(r: Row): Activation {
  return {
    id: str(r.id),
    ekPubHash: buf(r.ek_pub_hash),
    ekPublic: buf(r.ek_public),
    ekCertIssuer: optStr(r.ek_cert_issuer),
    trustedVia: str(r.trusted_via) as Activation["trustedVia"],
    akPublic: buf(r.ak_public),
    akName: buf(r.ak_name),
    secretHash: buf(r.secret_hash),
    state: str(r.state) as Activation["state"],
    deviceId: optStr(r.device_id),
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
    completedAt: optNum(r.completed_at),
  };
}

export const EK_REGISTRATION_COLS = "ek_pub_hash, source, note, created_at";
export function ekRegistrationFromRow(r: Row): EkRegistration {
  return {
    ekPubHash: buf(r.ek_pub_hash),
    source: str(r.source),
    note: optStr(r.note),
    createdAt: num(r.created_at),
  };
}

export const AUDIT_COLS = "seq, ts, type, decision, code, actor, subject, data, prev_hash, hash";
/** The chain head's link, both backends (no data column: nothing to parse). */
export const AUDIT_HEAD_SQL = "SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1";
export function auditLinkFromRow(r: Row): AuditLink {
  return { seq: num(r.seq), hash: buf(r.hash) };
}
/**
 * A row whose data is not JSON can only be the result of tampering (or corruption);
 * it is reported as audit.chain_broken naming the seq, so a verifier can locate it
 * instead of dying on a parse error.
 */
export function auditFromRow(r: Row): AuditEvent {
  const seq = num(r.seq);
  let data: unknown;
  try {
    data = JSON.parse(str(r.data));
  } catch (e) {
    throw new MayflyError("audit.chain_broken", `audit event ${seq}: data is not valid JSON`, {
      cause: e,
      extra: { seq, reason: "unreadable" },
    });
  }
  return {
    seq,
    ts: num(r.ts),
    type: str(r.type),
    decision: str(r.decision) as AuditDecision,
    code: optStr(r.code),
    actor: optStr(r.actor),
    subject: optStr(r.subject),
    data: data as Record<string, unknown>,
    prevHash: buf(r.prev_hash),
    hash: buf(r.hash),
  };
}

export const SCIM_USER_COLS =
  "id, owner_id, user_name, user_name_key, external_id, active, resource, version, created_at, updated_at";
export function scimUserFromRow(r: Row): ScimUser {
  const resource = jsonValue(r.resource, "scim_users.resource");
  if (typeof resource !== "object" || resource === null || Array.isArray(resource)) {
    throw new MayflyError("internal.error", "scim_users.resource is not a JSON object");
  }
  return {
    id: str(r.id),
    ownerId: str(r.owner_id),
    userName: str(r.user_name),
    externalId: optStr(r.external_id),
    active: r.active === 1,
    resource: resource as Record<string, unknown>,
    version: num(r.version),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
  };
}

export const TRANSFER_COLS =
  "id, agent_id, from_owner_id, to_owner_id, offered_by, state, created_at, expires_at, completed_at";
export function transferFromRow(r: Row): AgentTransfer {
  return {
    id: str(r.id),
    agentId: str(r.agent_id),
    fromOwnerId: str(r.from_owner_id),
    toOwnerId: str(r.to_owner_id),
    offeredBy: str(r.offered_by),
    state: str(r.state) as AgentTransfer["state"],
    createdAt: num(r.created_at),
    expiresAt: num(r.expires_at),
    completedAt: optNum(r.completed_at),
  };
}
