import type { PoolClient } from "pg";
import { MayflyError } from "../../errors/index.js";
import { freezeFacts } from "../issuance-facts.js";
import {
  ACTIVATION_COLS,
  AGENT_COLS,
  AUDIT_COLS,
  AUDIT_HEAD_SQL,
  activationFromRow,
  agentFromRow,
  auditFromRow,
  auditLinkFromRow,
  BINDING_COLS,
  bindingFromRow,
  CA_COLS,
  CA_JOURNAL_COLS,
  CERTIFICATE_COLS,
  caFromRow,
  caJournalFromRow,
  certificateFromRow,
  DELETE_EXPIRED_HOOK_JTIS_SQL,
  DEVICE_COLS,
  deviceFromRow,
  deviceParams,
  EK_REGISTRATION_COLS,
  ENSURE_SECRET_SQL,
  ekRegistrationFromRow,
  GET_SECRET_SQL,
  INSERT_DEVICE_SQL,
  listDevicesQuery,
  OWNER_COLS,
  ownerFromRow,
  RECORD_HOOK_JTI_SQL,
  SCIM_USER_COLS,
  scimUserFromRow,
  TRANSFER_COLS,
  transferFromRow,
  UPDATE_DEVICE_SQL,
  updateDeviceParams,
} from "../sqlite/rows.js";
import type { StoreTx } from "../store.js";
import type {
  Activation,
  Agent,
  AgentStatus,
  AgentTransfer,
  AuditEvent,
  AuditLink,
  Binding,
  CaCertificate,
  CaJournalEntry,
  CaSlot,
  CertificateRecord,
  Device,
  DeviceStatus,
  EkRegistration,
  IssuanceFacts,
  Owner,
  OwnerStatus,
  ScimUser,
  TransferState,
} from "../types.js";
import { PgTxBase } from "./tx-base.js";

/** userName is case-insensitive (RFC 7643 §4.1.1); the unique key is its lower case. */
function userNameKey(userName: string): string {
  return userName.toLowerCase();
}

/** How an audit append claims the chain head; see PostgresStoreOptions.auditLock. */
export type AuditLockMode = "row" | "advisory" | "optimistic";

/**
 * The statement that claims the chain head in each mode. The advisory key is the ASCII
 * bytes "mayflyau" as a big-endian integer; "optimistic" claims nothing.
 */
const AUDIT_CLAIM: Record<AuditLockMode, string | null> = {
  row: "SELECT id FROM audit_head WHERE id = 1 FOR UPDATE",
  advisory: "SELECT pg_advisory_xact_lock(7881714303688597877)",
  optimistic: null,
};

/**
 * The StoreTx handed to one tx() callback, over one pooled connection in one READ
 * COMMITTED transaction (postgres-store.ts says why). The SQL is SQLite's, statement
 * for statement, except where PostgreSQL needs a lock that SQLite's single writer
 * makes implicit:
 *
 * - getAgent locks the agent row (FOR NO KEY UPDATE) and getOwner, getDevice and
 *   getBinding lock theirs FOR SHARE, until the transaction ends. These are the facts an
 *   issuance decides on: a lifecycle change (leaver, kill switch, unenrolment, a new
 *   binding) either commits before the issuance reads them, and is seen, or waits for
 *   the issuance to commit. Issuances for one agent queue on its row instead of
 *   deadlocking on the last_issued_at update.
 * - auditHead locks the chain head until the transaction ends (see auditHead).
 */
export class PostgresTx extends PgTxBase implements StoreTx {
  constructor(
    client: PoolClient,
    private readonly auditLock: AuditLockMode,
    /** store.read(): a READ ONLY snapshot, where row locks are refused and not needed. */
    private readonly readOnly = false,
  ) {
    super(client, auditLock === "optimistic");
  }

  /** A row-lock clause, or nothing in a read-only transaction. */
  private lock(clause: string): string {
    return this.readOnly ? "" : ` ${clause}`;
  }

  // owners
  async insertOwner(o: Owner): Promise<void> {
    await this.run(
      "insertOwner",
      `INSERT INTO owners (${OWNER_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        o.id,
        o.issuer,
        o.subject,
        o.email,
        o.displayName,
        o.status,
        o.manager,
        o.department,
        JSON.stringify(o.groups ?? []),
        o.createdAt,
        o.updatedAt,
      ],
    );
  }
  async updateOwner(o: Owner): Promise<void> {
    // issuer, subject and createdAt identify the owner and never change.
    const sql =
      "UPDATE owners SET email = ?, display_name = ?, status = ?, manager = ?, department = ?, groups = ?, " +
      "updated_at = ? WHERE id = ?";
    const r = await this.run("updateOwner", sql, [
      o.email,
      o.displayName,
      o.status,
      o.manager,
      o.department,
      JSON.stringify(o.groups ?? []),
      o.updatedAt,
      o.id,
    ]);
    this.mustChange(r, () => new MayflyError("owner.not_found", `no owner ${o.id}`));
  }
  async listOwners(): Promise<Owner[]> {
    return (await this.all("listOwners", `SELECT ${OWNER_COLS} FROM owners ORDER BY created_at, id`, [])).map(
      ownerFromRow,
    );
  }
  async getOwner(id: string): Promise<Owner | null> {
    const r = await this.get(
      "getOwner",
      `SELECT ${OWNER_COLS} FROM owners WHERE id = ?${this.lock("FOR SHARE")}`,
      [id],
    );
    return r ? ownerFromRow(r) : null;
  }
  async findOwnerBySubject(issuer: string, subject: string): Promise<Owner | null> {
    const sql = `SELECT ${OWNER_COLS} FROM owners WHERE issuer = ? AND subject = ?`;
    const r = await this.get("findOwnerBySubject", sql, [issuer, subject]);
    return r ? ownerFromRow(r) : null;
  }
  async setOwnerStatus(id: string, status: OwnerStatus, at: number): Promise<void> {
    const r = await this.run("setOwnerStatus", "UPDATE owners SET status = ?, updated_at = ? WHERE id = ?", [
      status,
      at,
      id,
    ]);
    this.mustChange(r, () => new MayflyError("owner.not_found", `no owner ${id}`));
  }

  // devices
  async insertDevice(d: Device): Promise<void> {
    await this.run(
      "insertDevice",
      INSERT_DEVICE_SQL,
      deviceParams(d, (b) => b),
    );
  }
  async getDevice(id: string): Promise<Device | null> {
    const r = await this.get(
      "getDevice",
      `SELECT ${DEVICE_COLS} FROM devices WHERE id = ?${this.lock("FOR SHARE")}`,
      [id],
    );
    return r ? deviceFromRow(r) : null;
  }
  async findDeviceByEkHash(ekPubHash: Buffer): Promise<Device | null> {
    const sql = `SELECT ${DEVICE_COLS} FROM devices WHERE ek_pub_hash = ?`;
    const r = await this.get("findDeviceByEkHash", sql, [ekPubHash]);
    return r ? deviceFromRow(r) : null;
  }
  async setDeviceStatus(id: string, status: DeviceStatus, at: number): Promise<void> {
    const r = await this.run(
      "setDeviceStatus",
      "UPDATE devices SET status = ?, updated_at = ? WHERE id = ?",
      [status, at, id],
    );
    this.mustChange(r, () => new MayflyError("device.not_found", `no device ${id}`));
  }
  async findDeviceByMdmId(mdmId: string): Promise<Device | null> {
    const sql = `SELECT ${DEVICE_COLS} FROM devices WHERE mdm_id = ?`;
    const r = await this.get("findDeviceByMdmId", sql, [mdmId]);
    return r ? deviceFromRow(r) : null;
  }
  async lockDevice(id: string): Promise<Device | null> {
    // FOR UPDATE waits for an issuance holding the row FOR SHARE (and it for us), and
    // under READ COMMITTED returns the row as last committed.
    const sql = `SELECT ${DEVICE_COLS} FROM devices WHERE id = ?${this.lock("FOR UPDATE")}`;
    const r = await this.get("lockDevice", sql, [id]);
    return r ? deviceFromRow(r) : null;
  }
  async updateDevice(d: Device): Promise<void> {
    const r = await this.run(
      "updateDevice",
      UPDATE_DEVICE_SQL,
      updateDeviceParams(d, (b) => b),
    );
    this.mustChange(r, () => new MayflyError("device.not_found", `no device ${d.id}`));
  }
  async listDevices(q: {
    statuses?: DeviceStatus[];
    afterId?: string | null;
    limit: number;
  }): Promise<Device[]> {
    const { sql, params } = listDevicesQuery(q);
    if (sql === null) return [];
    return (await this.all("listDevices", sql, params)).map(deviceFromRow);
  }

  // agents and bindings
  async insertAgent(a: Agent): Promise<void> {
    const sql = `INSERT INTO agents (${AGENT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
    await this.run("insertAgent", sql, [
      a.id,
      a.name,
      a.ownerId,
      a.deviceId,
      a.spiffeId,
      a.purpose,
      a.profile,
      a.status,
      a.statusReason ?? null,
      a.expiresAt,
      a.lastIssuedAt,
      a.createdAt,
      a.updatedAt,
    ]);
  }
  async getAgent(id: string): Promise<Agent | null> {
    const r = await this.get(
      "getAgent",
      `SELECT ${AGENT_COLS} FROM agents WHERE id = ?${this.lock("FOR NO KEY UPDATE")}`,
      [id],
    );
    return r ? agentFromRow(r) : null;
  }
  async listAgentsByOwner(ownerId: string): Promise<Agent[]> {
    const sql = `SELECT ${AGENT_COLS} FROM agents WHERE owner_id = ? ORDER BY created_at, id`;
    return (await this.all("listAgentsByOwner", sql, [ownerId])).map(agentFromRow);
  }
  async listAgentsByDevice(deviceId: string): Promise<Agent[]> {
    const sql = `SELECT ${AGENT_COLS} FROM agents WHERE device_id = ? ORDER BY created_at, id`;
    return (await this.all("listAgentsByDevice", sql, [deviceId])).map(agentFromRow);
  }
  async setAgentStatus(
    id: string,
    status: AgentStatus,
    at: number,
    reason: string | null = null,
  ): Promise<void> {
    const sql = "UPDATE agents SET status = ?, status_reason = ?, updated_at = ? WHERE id = ?";
    const r = await this.run("setAgentStatus", sql, [status, reason, at, id]);
    this.mustChange(r, () => new MayflyError("agent.not_found", `no agent ${id}`));
  }
  async setAgentOwner(id: string, ownerId: string, at: number): Promise<void> {
    const sql = "UPDATE agents SET owner_id = ?, updated_at = ? WHERE id = ?";
    const r = await this.run("setAgentOwner", sql, [ownerId, at, id]);
    this.mustChange(r, () => new MayflyError("agent.not_found", `no agent ${id}`));
  }
  async listAgents(q: {
    statuses?: AgentStatus[];
    afterId?: string | null;
    limit: number;
  }): Promise<Agent[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.statuses) {
      if (q.statuses.length === 0) return [];
      where.push(`status IN (${q.statuses.map(() => "?").join(", ")})`);
      params.push(...q.statuses);
    }
    if (q.afterId !== undefined && q.afterId !== null) {
      where.push("id > ?");
      params.push(q.afterId);
    }
    const sql =
      `SELECT ${AGENT_COLS} FROM agents${where.length ? ` WHERE ${where.join(" AND ")}` : ""} ` +
      "ORDER BY id LIMIT ?";
    return (await this.all("listAgents", sql, [...params, Math.max(0, Math.floor(q.limit))])).map(
      agentFromRow,
    );
  }
  async markAgentIssued(id: string, at: number): Promise<void> {
    const r = await this.run("markAgentIssued", "UPDATE agents SET last_issued_at = ? WHERE id = ?", [
      at,
      id,
    ]);
    this.mustChange(r, () => new MayflyError("agent.not_found", `no agent ${id}`));
  }
  async upsertBinding(b: Binding): Promise<void> {
    // ON CONFLICT ... DO UPDATE is the same statement in SQLite (>= 3.24) and PostgreSQL.
    const sql =
      `INSERT INTO bindings (${BINDING_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (agent_id) DO UPDATE SET ` +
      "owner_id = excluded.owner_id, token_issuer = excluded.token_issuer, " +
      "token_subject = excluded.token_subject, auth_time = excluded.auth_time, " +
      "affirmed_at = excluded.affirmed_at, expires_at = excluded.expires_at";
    await this.run("upsertBinding", sql, [
      b.agentId,
      b.ownerId,
      b.tokenIssuer,
      b.tokenSubject,
      b.authTime,
      b.affirmedAt,
      b.expiresAt,
    ]);
  }
  async getBinding(agentId: string): Promise<Binding | null> {
    const r = await this.get(
      "getBinding",
      `SELECT ${BINDING_COLS} FROM bindings WHERE agent_id = ?${this.lock("FOR SHARE")}`,
      [agentId],
    );
    return r ? bindingFromRow(r) : null;
  }
  async getIssuanceFacts(agentId: string): Promise<IssuanceFacts | null> {
    // The four locked reads (see the class comment); no cache: the row locks are what
    // keep a lifecycle change from committing under an issuance here.
    const full = await this.getAgent(agentId);
    if (!full) return null;
    const { lastIssuedAt: _, ...agent } = full;
    // One after another: a pg client runs one query at a time anyway (its queue sends the
    // next when the last has answered), and queueing several at once is deprecated in pg 8
    // (it warned on every issuance) and gone in pg 9.
    const owner = await this.getOwner(agent.ownerId);
    const device = await this.getDevice(agent.deviceId);
    const binding = await this.getBinding(agentId);
    return freezeFacts({ agent, owner, device, binding });
  }

  // server secrets
  async ensureSecret(name: string, candidate: Buffer): Promise<Buffer> {
    // A concurrent insert of the same name waits for the first to commit, then inserts
    // nothing; the SELECT, a new statement under READ COMMITTED, sees the committed value.
    await this.run("ensureSecret", ENSURE_SECRET_SQL, [name, candidate]);
    const r = await this.get("ensureSecret", GET_SECRET_SQL, [name]);
    if (!r) throw new MayflyError("internal.error", `secret ${name} vanished after insert`);
    return r.value as Buffer;
  }

  // certificates
  async insertCertificate(c: CertificateRecord): Promise<void> {
    await this.run(
      "insertCertificate",
      `INSERT INTO certificates (${CERTIFICATE_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        c.issuerKeyId,
        c.serial,
        c.agentId,
        c.challengeNonce,
        c.notBefore,
        c.notAfter,
        c.der,
        c.fingerprint,
        c.createdAt,
      ],
    );
  }
  async getCertificate(issuerKeyId: Buffer, serial: Buffer): Promise<CertificateRecord | null> {
    const sql = `SELECT ${CERTIFICATE_COLS} FROM certificates WHERE issuer_key_id = ? AND serial = ?`;
    const r = await this.get("getCertificate", sql, [issuerKeyId, serial]);
    return r ? certificateFromRow(r) : null;
  }
  async listCertificatesByAgent(agentId: string): Promise<CertificateRecord[]> {
    const sql =
      `SELECT ${CERTIFICATE_COLS} FROM certificates WHERE agent_id = ? ` +
      "ORDER BY created_at, issuer_key_id, serial";
    return (await this.all("listCertificatesByAgent", sql, [agentId])).map(certificateFromRow);
  }
  async countCertificates(): Promise<number> {
    const r = await this.get("countCertificates", "SELECT COUNT(*) AS n FROM certificates", []);
    return Number(r?.n ?? 0);
  }
  async deleteCertificatesExpiredBefore(before: number, limit: number): Promise<number> {
    const sql =
      "DELETE FROM certificates WHERE (issuer_key_id, serial) IN (SELECT issuer_key_id, serial " +
      "FROM certificates WHERE not_after < ? ORDER BY not_after LIMIT ?)";
    return await this.run("deleteCertificatesExpiredBefore", sql, [before, Math.max(0, Math.floor(limit))]);
  }

  // CA certificates
  async insertCaCertificate(c: CaCertificate): Promise<void> {
    await this.run(
      "insertCaCertificate",
      `INSERT INTO ca_certificates (${CA_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      [c.id, c.role, c.slot, c.keyLabel, c.der, c.notBefore, c.notAfter, c.createdAt],
    );
  }
  async listCaCertificates(): Promise<CaCertificate[]> {
    const sql = `SELECT ${CA_COLS} FROM ca_certificates ORDER BY created_at, id`;
    return (await this.all("listCaCertificates", sql, [])).map(caFromRow);
  }
  async setCaSlot(id: string, slot: CaSlot): Promise<void> {
    const r = await this.run("setCaSlot", "UPDATE ca_certificates SET slot = ? WHERE id = ?", [slot, id]);
    this.mustChange(r, () => new MayflyError("request.not_found", `no CA certificate ${id}`));
  }
  async compareAndSetCaSlot(id: string, from: CaSlot, to: CaSlot): Promise<boolean> {
    // The condition lives in the UPDATE, not in a prior read: whoever's update changes the
    // row won, on any number of connections or replicas. A second UPDATE waits for the
    // first's row lock, then re-checks the slot on the committed row (READ COMMITTED) and
    // changes nothing.
    const sql = "UPDATE ca_certificates SET slot = ? WHERE id = ? AND slot = ?";
    return (await this.run("compareAndSetCaSlot", sql, [to, id, from])) === 1;
  }
  async maxCertificateNotAfter(issuerKeyId: Buffer): Promise<number | null> {
    const sql = "SELECT MAX(not_after) AS m FROM certificates WHERE issuer_key_id = ?";
    const r = await this.get("maxCertificateNotAfter", sql, [issuerKeyId]);
    return r?.m === null || r?.m === undefined ? null : Number(r.m);
  }

  // CA rotation journal
  async appendCaJournal(e: Omit<CaJournalEntry, "seq">): Promise<CaJournalEntry | null> {
    // A concurrent insert of the same (rotation_id, step) waits for the first to commit,
    // then does nothing: each step is recorded once across replicas.
    const sql =
      "INSERT INTO ca_journal (rotation_id, kind, step, at, data) VALUES (?, ?, ?, ?, ?) " +
      "ON CONFLICT (rotation_id, step) DO NOTHING RETURNING seq";
    const r = await this.get("appendCaJournal", sql, [
      e.rotationId,
      e.kind,
      e.step,
      e.at,
      JSON.stringify(e.data),
    ]);
    return r ? { ...e, seq: Number(r.seq) } : null;
  }
  async listCaJournal(): Promise<CaJournalEntry[]> {
    const sql = `SELECT ${CA_JOURNAL_COLS} FROM ca_journal ORDER BY seq`;
    return (await this.all("listCaJournal", sql, [])).map(caJournalFromRow);
  }

  // TPM activations and registered EKs
  async insertActivation(a: Activation): Promise<void> {
    const sql = `INSERT INTO activations (${ACTIVATION_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
    await this.run("insertActivation", sql, [
      a.id,
      a.ekPubHash,
      a.ekPublic,
      a.ekCertIssuer,
      a.trustedVia,
      a.akPublic,
      a.akName,
      a.secretHash,
      a.state,
      a.deviceId,
      a.createdAt,
      a.expiresAt,
      a.completedAt,
    ]);
  }
  async getActivation(id: string): Promise<Activation | null> {
    const r = await this.get("getActivation", `SELECT ${ACTIVATION_COLS} FROM activations WHERE id = ?`, [
      id,
    ]);
    return r ? activationFromRow(r) : null;
  }
  async completeActivation(
    id: string,
    state: "succeeded" | "failed",
    deviceId: string | null,
    at: number,
  ): Promise<boolean> {
    // As compareAndSetCaSlot: the condition is in the UPDATE, so exactly one attempt changes
    // the row. expires_at == at is already expired.
    const sql =
      "UPDATE activations SET state = ?, device_id = ?, completed_at = ? " +
      "WHERE id = ? AND state = 'pending' AND expires_at > ?";
    return (await this.run("completeActivation", sql, [state, deviceId, at, id, at])) === 1;
  }
  async countActivationsSince(ekPubHash: Buffer, since: number): Promise<number> {
    const sql = "SELECT COUNT(*) AS n FROM activations WHERE ek_pub_hash = ? AND created_at >= ?";
    const r = await this.get("countActivationsSince", sql, [ekPubHash, since]);
    return Number(r?.n ?? 0);
  }
  async setDeviceAk(
    id: string,
    akPublic: Buffer,
    akName: Buffer,
    ekCertIssuer: string | null,
    at: number,
    akQualifiedName: Buffer | null = null,
  ): Promise<void> {
    const sql =
      "UPDATE devices SET ak_public = ?, ak_name = ?, ek_cert_issuer = ?, updated_at = ?, " +
      "ak_qualified_name = ? WHERE id = ?";
    const r = await this.run("setDeviceAk", sql, [akPublic, akName, ekCertIssuer, at, akQualifiedName, id]);
    this.mustChange(r, () => new MayflyError("device.not_found", `no device ${id}`));
  }
  async upsertEkRegistration(r: EkRegistration): Promise<void> {
    // created_at records when the EK was first vouched for and survives a re-registration;
    // who vouched (source) and why (note) are replaced.
    const sql =
      `INSERT INTO ek_registrations (${EK_REGISTRATION_COLS}) VALUES (?, ?, ?, ?) ` +
      "ON CONFLICT (ek_pub_hash) DO UPDATE SET source = excluded.source, note = excluded.note";
    await this.run("upsertEkRegistration", sql, [r.ekPubHash, r.source, r.note, r.createdAt]);
  }
  async getEkRegistration(ekPubHash: Buffer): Promise<EkRegistration | null> {
    const sql = `SELECT ${EK_REGISTRATION_COLS} FROM ek_registrations WHERE ek_pub_hash = ?`;
    const r = await this.get("getEkRegistration", sql, [ekPubHash]);
    return r ? ekRegistrationFromRow(r) : null;
  }
  async deleteEkRegistration(ekPubHash: Buffer): Promise<boolean> {
    const sql = "DELETE FROM ek_registrations WHERE ek_pub_hash = ?";
    return (await this.run("deleteEkRegistration", sql, [ekPubHash])) === 1;
  }
  // signed hook events: replay protection
  async recordHookJti(source: string, jti: string, expiresAt: number, at: number): Promise<boolean> {
    // A concurrent insert of the same pair waits for the first to commit, then inserts nothing.
    return (await this.run("recordHookJti", RECORD_HOOK_JTI_SQL, [source, jti, expiresAt, at])) === 1;
  }
  async deleteExpiredHookJtis(before: number, limit: number): Promise<number> {
    const params = [before, Math.max(0, Math.floor(limit))];
    return this.run("deleteExpiredHookJtis", DELETE_EXPIRED_HOOK_JTIS_SQL, params);
  }

  // SCIM users
  async insertScimUser(u: ScimUser): Promise<void> {
    const sql = `INSERT INTO scim_users (${SCIM_USER_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`;
    await this.run("insertScimUser", sql, [
      u.id,
      u.ownerId,
      u.userName,
      userNameKey(u.userName),
      u.externalId,
      u.active,
      JSON.stringify(u.resource),
      u.version,
      u.createdAt,
      u.updatedAt,
    ]);
  }
  async getScimUser(id: string): Promise<ScimUser | null> {
    const r = await this.get("getScimUser", `SELECT ${SCIM_USER_COLS} FROM scim_users WHERE id = ?`, [id]);
    return r ? scimUserFromRow(r) : null;
  }
  async findScimUserByUserName(userName: string): Promise<ScimUser | null> {
    const sql = `SELECT ${SCIM_USER_COLS} FROM scim_users WHERE user_name_key = ?`;
    const r = await this.get("findScimUserByUserName", sql, [userNameKey(userName)]);
    return r ? scimUserFromRow(r) : null;
  }
  async findScimUserByOwner(ownerId: string): Promise<ScimUser | null> {
    const sql = `SELECT ${SCIM_USER_COLS} FROM scim_users WHERE owner_id = ?`;
    const r = await this.get("findScimUserByOwner", sql, [ownerId]);
    return r ? scimUserFromRow(r) : null;
  }
  async updateScimUser(u: ScimUser): Promise<void> {
    // id, ownerId and createdAt never change.
    const sql =
      "UPDATE scim_users SET user_name = ?, user_name_key = ?, external_id = ?, active = ?, resource = ?, " +
      "version = ?, updated_at = ? WHERE id = ?";
    const r = await this.run("updateScimUser", sql, [
      u.userName,
      userNameKey(u.userName),
      u.externalId,
      u.active,
      JSON.stringify(u.resource),
      u.version,
      u.updatedAt,
      u.id,
    ]);
    this.mustChange(r, () => new MayflyError("scim.not_found", `no SCIM user ${u.id}`));
  }
  async deleteScimUser(id: string): Promise<boolean> {
    return (await this.run("deleteScimUser", "DELETE FROM scim_users WHERE id = ?", [id])) === 1;
  }
  async listScimUsers(offset: number, limit: number): Promise<ScimUser[]> {
    const sql = `SELECT ${SCIM_USER_COLS} FROM scim_users ORDER BY created_at, id LIMIT ? OFFSET ?`;
    return (await this.all("listScimUsers", sql, [Math.max(0, limit), Math.max(0, offset)])).map(
      scimUserFromRow,
    );
  }
  async countScimUsers(): Promise<number> {
    const r = await this.get("countScimUsers", "SELECT COUNT(*) AS n FROM scim_users", []);
    return Number(r?.n ?? 0);
  }

  // agent transfers
  async insertTransfer(t: AgentTransfer): Promise<void> {
    const sql = `INSERT INTO agent_transfers (${TRANSFER_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`;
    await this.run("insertTransfer", sql, [
      t.id,
      t.agentId,
      t.fromOwnerId,
      t.toOwnerId,
      t.offeredBy,
      t.state,
      t.createdAt,
      t.expiresAt,
      t.completedAt,
    ]);
  }
  async getTransfer(id: string): Promise<AgentTransfer | null> {
    const r = await this.get("getTransfer", `SELECT ${TRANSFER_COLS} FROM agent_transfers WHERE id = ?`, [
      id,
    ]);
    return r ? transferFromRow(r) : null;
  }
  async closeTransfer(id: string, state: Exclude<TransferState, "pending">, at: number): Promise<boolean> {
    // As compareAndSetCaSlot: the condition is in the UPDATE, so one accept (or cancel) wins.
    const sql =
      "UPDATE agent_transfers SET state = ?, completed_at = ? WHERE id = ? AND state = 'pending' AND expires_at > ?";
    return (await this.run("closeTransfer", sql, [state, at, id, at])) === 1;
  }
  async listTransfersByOwner(ownerId: string): Promise<AgentTransfer[]> {
    const sql =
      `SELECT ${TRANSFER_COLS} FROM agent_transfers WHERE from_owner_id = ? OR to_owner_id = ? ` +
      "ORDER BY created_at, id";
    return (await this.all("listTransfersByOwner", sql, [ownerId, ownerId])).map(transferFromRow);
  }

  // audit
  async auditHead(): Promise<AuditLink | null> {
    // Claim the head, then read it in a second statement: under READ COMMITTED that
    // statement's snapshot is taken after the lock was granted, so it sees the event the
    // previous holder committed. Both go in one round trip (every round trip made while
    // holding the head is time no other replica can append). Held until commit or
    // rollback, across every replica.
    const claim = this.readOnly ? null : AUDIT_CLAIM[this.auditLock];
    const rows = await this.batch("auditHead", claim ? `${claim}; ${AUDIT_HEAD_SQL}` : AUDIT_HEAD_SQL);
    return rows[0] ? auditLinkFromRow(rows[0]) : null;
  }
  async insertAuditEvent(e: AuditEvent): Promise<void> {
    await this.run(
      "insertAuditEvent",
      `INSERT INTO audit_events (${AUDIT_COLS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      [
        e.seq,
        e.ts,
        e.type,
        e.decision,
        e.code,
        e.actor,
        e.subject,
        JSON.stringify(e.data),
        e.prevHash,
        e.hash,
      ],
    );
  }
  async listAuditEvents(fromSeq: number, limit: number): Promise<AuditEvent[]> {
    const sql = `SELECT ${AUDIT_COLS} FROM audit_events WHERE seq >= ? ORDER BY seq LIMIT ?`;
    return (await this.all("listAuditEvents", sql, [fromSeq, limit])).map(auditFromRow);
  }
}
