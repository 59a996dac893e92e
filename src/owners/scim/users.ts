import { appendAudit } from "../../audit/index.js";
import type { Config } from "../../config/schema.js";
import { MayflyError } from "../../errors/index.js";
import type { Clock, Random } from "../../runtime/clock.js";
import type { Store, StoreTx } from "../../store/store.js";
import type { Owner, OwnerStatus, ScimUser } from "../../store/types.js";
import { applyOwnerUpdate } from "../lifecycle.js";
import { parseUserFilter } from "./filter.js";
import { applyPatch } from "./patch.js";
import { type JsonObject, normaliseUser, renderUser, type UserFacts, userFacts } from "./resource.js";

// The SCIM Users resource over the store: each request is one transaction in which the
// SCIM record, the owner it provisions and every lifecycle consequence (agents
// suspended or quarantined) commit together, audited with actor "scim". Denials are
// recorded by the route layer, which sees every failure including authentication.

export interface ScimDeps {
  store: Store;
  clock: Clock;
  random: Random;
  config: Config;
}

const ACTOR = "scim";
const MAX_COUNT = 200;

function notFound(id: string): MayflyError {
  return new MayflyError("scim.not_found", `no User ${id}`);
}

/** The value that links a User to an owner: owners.scim.subjectAttribute. */
function subjectOf(f: UserFacts, config: Config): string {
  const attr = config.owners.scim.subjectAttribute;
  const v = attr === "externalId" ? f.externalId : f.userName;
  if (!v) {
    throw new MayflyError(
      "scim.invalid_value",
      `${attr} is required: it carries the identity provider's subject for this person (owners.scim.subjectAttribute)`,
      { field: attr },
    );
  }
  return v;
}

function statusFrom(f: UserFacts, previous: OwnerStatus): OwnerStatus {
  if (f.active === null) return previous === "deprovisioned" ? "active" : previous;
  return f.active ? "active" : "suspended";
}

function ownerWith(o: Owner, f: UserFacts, status: OwnerStatus, now: number): Owner {
  return {
    ...o,
    email: f.email ?? o.email,
    displayName: f.displayName ?? o.displayName,
    manager: f.manager,
    department: f.department,
    status,
    updatedAt: now,
  };
}

async function requireFreeUserName(tx: StoreTx, userName: string, self: string | null): Promise<void> {
  const other = await tx.findScimUserByUserName(userName);
  if (other && other.id !== self) {
    throw new MayflyError("scim.uniqueness", `userName ${JSON.stringify(userName)} is taken`, {
      field: "userName",
    });
  }
}

async function audit(
  tx: StoreTx,
  clock: Clock,
  type: string,
  u: ScimUser,
  data: Record<string, unknown> = {},
) {
  await appendAudit(tx, clock, {
    type,
    decision: "allow",
    code: null,
    actor: ACTOR,
    subject: `owner:${u.ownerId}`,
    data: { scimId: u.id, userName: u.userName, externalId: u.externalId, active: u.active, ...data },
  });
}

/** POST /Users: provisions a person, creating the owner or adopting one who logged in first. */
export async function createUser(deps: ScimDeps, body: unknown, baseUrl: string): Promise<JsonObject> {
  const { store, clock, random, config } = deps;
  const resource = normaliseUser(body, { requireSchemas: true });
  const f = userFacts(resource);
  const subject = subjectOf(f, config);
  const issuer = config.owners.oidc.issuer;
  if (!issuer) throw new MayflyError("idp.not_configured", "owners.oidc.issuer is not configured");
  return store.tx(async (tx) => {
    const now = clock.now();
    await requireFreeUserName(tx, f.userName, null);
    let owner = await tx.findOwnerBySubject(issuer, subject);
    if (owner) {
      if (await tx.findScimUserByOwner(owner.id)) {
        throw new MayflyError("scim.uniqueness", `another User already provisions ${subject}`, {
          field: config.owners.scim.subjectAttribute,
        });
      }
      const after = ownerWith(owner, f, f.active === false ? "suspended" : "active", now);
      await applyOwnerUpdate(tx, clock, config, owner, after, ACTOR);
      owner = after;
    } else {
      owner = ownerWith(
        {
          id: random.bytes(16).toString("base64url"),
          issuer,
          subject,
          email: null,
          displayName: null,
          status: "active",
          manager: null,
          department: null,
          groups: [],
          createdAt: now,
          updatedAt: now,
        },
        f,
        f.active === false ? "suspended" : "active",
        now,
      );
      await tx.insertOwner(owner);
      await appendAudit(tx, clock, {
        type: "owner.create",
        decision: "allow",
        code: null,
        actor: ACTOR,
        subject: `owner:${owner.id}`,
        data: { source: "scim", issuer, subject, email: owner.email, status: owner.status },
      });
    }
    const user: ScimUser = {
      id: random.bytes(16).toString("hex"),
      ownerId: owner.id,
      userName: f.userName,
      externalId: f.externalId,
      active: owner.status === "active",
      resource,
      version: 1,
      createdAt: now,
      updatedAt: now,
    };
    await tx.insertScimUser(user);
    await audit(tx, clock, "scim.user.create", user);
    return renderUser(user, baseUrl);
  });
}

export async function getUser(deps: ScimDeps, id: string, baseUrl: string): Promise<JsonObject> {
  const u = await deps.store.tx((tx) => tx.getScimUser(id));
  if (!u) throw notFound(id);
  return renderUser(u, baseUrl);
}

/** GET /Users with an optional `userName eq` filter, startIndex (1-based) and count. */
export async function listUsers(
  deps: ScimDeps,
  q: { filter?: unknown; startIndex?: unknown; count?: unknown },
  baseUrl: string,
): Promise<JsonObject> {
  const int = (v: unknown, dflt: number, name: string) => {
    if (v === undefined) return dflt;
    const n = typeof v === "string" && /^-?\d+$/.test(v) ? Number(v) : Number.NaN;
    if (!Number.isSafeInteger(n)) {
      throw new MayflyError("scim.invalid_value", `${name} must be an integer`, { field: name });
    }
    return n;
  };
  const startIndex = Math.max(1, int(q.startIndex, 1, "startIndex"));
  const count = Math.min(MAX_COUNT, Math.max(0, int(q.count, 100, "count")));
  if (q.filter !== undefined && typeof q.filter !== "string") {
    throw new MayflyError("scim.invalid_filter", "one filter parameter", { field: "filter" });
  }
  const { total, users } = await deps.store.tx(async (tx) => {
    if (typeof q.filter === "string") {
      const { userName } = parseUserFilter(q.filter);
      const u = await tx.findScimUserByUserName(userName);
      const all = u ? [u] : [];
      return { total: all.length, users: all.slice(startIndex - 1, startIndex - 1 + count) };
    }
    return { total: await tx.countScimUsers(), users: await tx.listScimUsers(startIndex - 1, count) };
  });
  return {
    schemas: ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
    totalResults: total,
    startIndex,
    itemsPerPage: users.length,
    Resources: users.map((u) => renderUser(u, baseUrl)),
  };
}

/**
 * Writes a changed User and its owner: PUT and PATCH end here. The subject attribute
 * is immutable (changing it would silently hand the owner record to another login);
 * a deactivation is a leaver, a changed manager or department a mover (lifecycle.ts).
 */
async function writeUser(
  tx: StoreTx,
  deps: ScimDeps,
  before: ScimUser,
  resource: JsonObject,
  type: string,
): Promise<ScimUser> {
  const { clock, config } = deps;
  const now = clock.now();
  const f = userFacts(resource);
  const owner = await tx.getOwner(before.ownerId);
  if (!owner) throw new MayflyError("internal.error", `SCIM user ${before.id} has no owner`);
  if (subjectOf(f, config) !== owner.subject) {
    throw new MayflyError(
      "scim.mutability",
      `${config.owners.scim.subjectAttribute} identifies the person and cannot change (was ${owner.subject})`,
      { field: config.owners.scim.subjectAttribute },
    );
  }
  await requireFreeUserName(tx, f.userName, before.id);
  const status = statusFrom(f, owner.status);
  const change = await applyOwnerUpdate(tx, clock, config, owner, ownerWith(owner, f, status, now), ACTOR);
  const active = status === "active";
  const stored = { ...resource, active };
  const changed =
    JSON.stringify(stored) !== JSON.stringify(before.resource) || before.userName !== f.userName;
  const after: ScimUser = {
    ...before,
    userName: f.userName,
    externalId: f.externalId,
    active,
    resource: stored,
    version: changed || before.active !== active ? before.version + 1 : before.version,
    updatedAt: changed ? now : before.updatedAt,
  };
  if (after.version !== before.version) {
    await tx.updateScimUser(after);
    await audit(tx, clock, type, after, {
      leaver: change.leaver,
      returned: change.returned,
      moved: change.moved,
      suspended: change.suspended,
      quarantined: change.quarantined,
    });
  }
  return after;
}

/** PUT /Users/{id}: replaces the User. An `active` left out keeps the current state. */
export async function replaceUser(
  deps: ScimDeps,
  id: string,
  body: unknown,
  baseUrl: string,
): Promise<JsonObject> {
  const resource = normaliseUser(body, { requireSchemas: true });
  return deps.store.tx(async (tx) => {
    const before = await tx.getScimUser(id);
    if (!before) throw notFound(id);
    if (resource.active === undefined) resource.active = before.active;
    return renderUser(await writeUser(tx, deps, before, resource, "scim.user.replace"), baseUrl);
  });
}

/** PATCH /Users/{id}. */
export async function patchUser(
  deps: ScimDeps,
  id: string,
  body: unknown,
  baseUrl: string,
): Promise<JsonObject> {
  return deps.store.tx(async (tx) => {
    const before = await tx.getScimUser(id);
    if (!before) throw notFound(id);
    const resource = applyPatch({ ...(before.resource as JsonObject), active: before.active }, body);
    return renderUser(await writeUser(tx, deps, before, resource, "scim.user.patch"), baseUrl);
  });
}

/**
 * DELETE /Users/{id}: the User is gone (a GET answers 404), the owner is kept, as
 * deprovisioned, with the history that names them; every agent is suspended.
 */
export async function deleteUser(deps: ScimDeps, id: string): Promise<void> {
  const { store, clock, config } = deps;
  await store.tx(async (tx) => {
    const before = await tx.getScimUser(id);
    if (!before) throw notFound(id);
    const owner = await tx.getOwner(before.ownerId);
    if (!owner) throw new MayflyError("internal.error", `SCIM user ${id} has no owner`);
    const change = await applyOwnerUpdate(
      tx,
      clock,
      config,
      owner,
      { ...owner, status: "deprovisioned", updatedAt: clock.now() },
      ACTOR,
    );
    await tx.deleteScimUser(id);
    await audit(tx, clock, "scim.user.delete", before, { suspended: change.suspended });
  });
}
