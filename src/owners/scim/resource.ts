import { MayflyError } from "../../errors/index.js";
import type { ScimUser } from "../../store/types.js";

// The SCIM 2.0 User (RFC 7643 §4.1, enterprise extension §4.3) as Mayfly keeps it.
// Attribute names are case-insensitive (RFC 7643 §2.1): keys are brought to their
// canonical spelling on the way in, so "UserName" and "userName" are one attribute.

export const CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User";
export const ENTERPRISE_USER = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
export const PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
export const LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
export const ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error";

const CORE_ATTRIBUTES = [
  "id",
  "externalId",
  "meta",
  "schemas",
  "userName",
  "name",
  "displayName",
  "nickName",
  "profileUrl",
  "title",
  "userType",
  "preferredLanguage",
  "locale",
  "timezone",
  "active",
  "password",
  "emails",
  "phoneNumbers",
  "ims",
  "photos",
  "addresses",
  "groups",
  "entitlements",
  "roles",
  "x509Certificates",
];
const ENTERPRISE_ATTRIBUTES = [
  "employeeNumber",
  "costCenter",
  "organization",
  "division",
  "department",
  "manager",
];
const SUB_ATTRIBUTES = [
  "value",
  "display",
  "type",
  "primary",
  "$ref",
  "formatted",
  "familyName",
  "givenName",
  "middleName",
  "honorificPrefix",
  "honorificSuffix",
  "streetAddress",
  "locality",
  "region",
  "postalCode",
  "country",
  "displayName",
];

const canonical = (names: readonly string[]) => new Map(names.map((n) => [n.toLowerCase(), n]));
const CORE = canonical(CORE_ATTRIBUTES);
const ENTERPRISE = canonical(ENTERPRISE_ATTRIBUTES);
const SUB = canonical(SUB_ATTRIBUTES);

export function coreName(name: string): string {
  return CORE.get(name.toLowerCase()) ?? name;
}
export function enterpriseName(name: string): string {
  return ENTERPRISE.get(name.toLowerCase()) ?? name;
}
export function subName(name: string): string {
  return SUB.get(name.toLowerCase()) ?? name;
}
export function isEnterpriseUrn(s: string): boolean {
  return s.toLowerCase() === ENTERPRISE_USER.toLowerCase();
}

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function scimError(
  code: "scim.invalid_value" | "scim.invalid_syntax" | "scim.mutability",
  detail: string,
  field?: string,
): MayflyError {
  return new MayflyError(code, detail, field ? { field } : {});
}

/**
 * Booleans as JSON booleans or as the strings Microsoft Entra sends ("True", "False",
 * any case): a well-known Entra quirk (its `active` in PATCH is a string).
 */
export function scimBoolean(v: unknown, field: string): boolean {
  if (typeof v === "boolean") return v;
  if (typeof v === "string" && /^(true|false)$/i.test(v.trim())) return v.trim().toLowerCase() === "true";
  throw scimError("scim.invalid_value", `${field} must be a boolean`, field);
}

/**
 * The manager as Okta and Entra send it: { value, displayName?, $ref? }, a bare id
 * string (Entra's PATCH), a one-element array of that object (older Entra jobs), or
 * null / "" to clear it.
 */
export function scimManager(v: unknown): JsonObject | null {
  const one = Array.isArray(v) ? (v.length === 0 ? null : v[0]) : v;
  if (one === null || one === undefined || one === "") return null;
  if (typeof one === "string") return { value: one };
  if (isObject(one)) {
    const out: JsonObject = {};
    for (const [k, x] of Object.entries(one)) out[subName(k)] = x;
    if (out.value === undefined || out.value === null || out.value === "") return null;
    if (typeof out.value !== "string")
      throw scimError("scim.invalid_value", "manager.value must be a string", "manager");
    return out;
  }
  throw scimError("scim.invalid_value", "manager must be an object with a value", "manager");
}

function canonicalSub(v: Json): Json {
  if (Array.isArray(v)) return v.map(canonicalSub);
  if (!isObject(v)) return v;
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) out[subName(k)] = x;
  return out;
}

/** The enterprise extension object with canonical keys and a normalised manager. */
export function normaliseEnterprise(v: unknown): JsonObject {
  if (!isObject(v))
    throw scimError("scim.invalid_value", `${ENTERPRISE_USER} must be an object`, ENTERPRISE_USER);
  const out: JsonObject = {};
  for (const [k, x] of Object.entries(v)) {
    const name = enterpriseName(k);
    if (name === "manager") {
      const m = scimManager(x);
      if (m) out.manager = m;
    } else if (x !== null) out[name] = canonicalSub(x);
  }
  return out;
}

/**
 * A User from POST or PUT (or the result of a PATCH) as stored: canonical keys,
 * `active` a real boolean, no id/meta/schemas (the server's), no password (Mayfly
 * never keeps a secret it does not need; Okta sends one) and no groups (read-only
 * on a User, RFC 7643 §4.1.2). Attributes Mayfly does not use are kept as sent.
 */
export function normaliseUser(body: unknown, opts: { requireSchemas: boolean }): JsonObject {
  if (!isObject(body)) throw scimError("scim.invalid_syntax", "a SCIM User is a JSON object");
  const out: JsonObject = {};
  let schemas: Json | undefined;
  for (const [k, v] of Object.entries(body)) {
    if (isEnterpriseUrn(k)) {
      const ent = normaliseEnterprise(v);
      if (Object.keys(ent).length > 0) out[ENTERPRISE_USER] = ent;
      continue;
    }
    const name = coreName(k);
    if (name === "schemas") schemas = v;
    if (["id", "meta", "schemas", "password", "groups"].includes(name) || v === null) continue;
    out[name] = name === "active" ? scimBoolean(v, "active") : canonicalSub(v);
  }
  if (opts.requireSchemas) {
    if (
      !Array.isArray(schemas) ||
      !schemas.some((s) => typeof s === "string" && s.toLowerCase() === CORE_USER.toLowerCase())
    ) {
      throw scimError("scim.invalid_syntax", `schemas must include ${CORE_USER}`, "schemas");
    }
  }
  if (typeof out.userName !== "string" || out.userName.trim() === "") {
    throw scimError("scim.invalid_value", "userName is required", "userName");
  }
  if (out.userName.length > 256) throw scimError("scim.invalid_value", "userName is too long", "userName");
  if (out.externalId !== undefined && (typeof out.externalId !== "string" || out.externalId === "")) {
    throw scimError("scim.invalid_value", "externalId must be a non-empty string", "externalId");
  }
  if (out.displayName !== undefined && typeof out.displayName !== "string") {
    throw scimError("scim.invalid_value", "displayName must be a string", "displayName");
  }
  if (out.name !== undefined && !isObject(out.name)) {
    throw scimError("scim.invalid_value", "name must be an object", "name");
  }
  if (out.emails !== undefined) {
    if (!Array.isArray(out.emails) || !out.emails.every((e) => isObject(e) && typeof e.value === "string")) {
      throw scimError("scim.invalid_value", "emails must be a list of { value }", "emails");
    }
  }
  return out;
}

/** What Mayfly takes from a User for its owner record. */
export interface UserFacts {
  userName: string;
  externalId: string | null;
  active: boolean | null; // null: not said
  displayName: string | null;
  email: string | null;
  manager: string | null;
  department: string | null;
}

function str(v: Json | undefined): string | null {
  return typeof v === "string" && v !== "" ? v : null;
}

export function userFacts(r: JsonObject): UserFacts {
  const emails = Array.isArray(r.emails) ? r.emails.filter(isObject) : [];
  const email = emails.find((e) => e.primary === true || e.primary === "True") ?? emails[0];
  const name = isObject(r.name) ? r.name : null;
  const composed = name ? [str(name.givenName), str(name.familyName)].filter(Boolean).join(" ") : "";
  const ent = isObject(r[ENTERPRISE_USER]) ? (r[ENTERPRISE_USER] as JsonObject) : null;
  const manager = ent && isObject(ent.manager) ? str(ent.manager.value) : null;
  return {
    userName: r.userName as string,
    externalId: str(r.externalId),
    active: typeof r.active === "boolean" ? r.active : null,
    displayName: str(r.displayName) ?? (name ? str(name.formatted) : null) ?? (composed || null),
    email: email ? str(email.value) : null,
    manager,
    department: ent ? str(ent.department) : null,
  };
}

/** The User as GET returns it (RFC 7643 §3.1 meta; version as a weak ETag). */
export function renderUser(u: ScimUser, baseUrl: string): JsonObject {
  const schemas: Json[] = [CORE_USER];
  if (isObject(u.resource[ENTERPRISE_USER] as Json)) schemas.push(ENTERPRISE_USER);
  return {
    schemas,
    id: u.id,
    ...(u.resource as JsonObject),
    active: u.active,
    meta: {
      resourceType: "User",
      created: new Date(u.createdAt).toISOString(),
      lastModified: new Date(u.updatedAt).toISOString(),
      version: etag(u),
      location: `${baseUrl}/Users/${u.id}`,
    },
  };
}

export function etag(u: ScimUser): string {
  return `W/"${u.version}"`;
}
