import { appendAudit } from "../audit/index.js";
import type { Config } from "../config/schema.js";
import { MayflyError } from "../errors/index.js";
import type { Clock, Random } from "../runtime/clock.js";
import type { StoreTx } from "../store/store.js";
import type { Owner } from "../store/types.js";
import type { VerifiedIdToken } from "./oidc-verifier.js";

export type ClaimMapping = Config["owners"]["claims"];

/** What a login says about its owner, through the configured claim mapping. */
export interface OwnerClaims {
  subject: string;
  email: string | null;
  name: string | null;
  groups: string[];
}

const MAX_GROUPS = 256;
const MAX_TEXT = 256;

/** A claim by name, or by dotted path into nested objects (e.g. Keycloak's realm_access.roles). */
function claim(claims: Record<string, unknown>, path: string): unknown {
  if (path in claims) return claims[path];
  let v: unknown = claims;
  for (const part of path.split(".")) {
    if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function text(v: unknown): string | null {
  return typeof v === "string" && v.length > 0 ? v.slice(0, MAX_TEXT) : null;
}

/**
 * The owner facts in a verified token. The subject claim is what links a login to a
 * SCIM-provisioned owner (owners.scim.subjectAttribute holds the same value); it must
 * be a non-empty string, every other claim is optional.
 */
export function ownerClaims(token: VerifiedIdToken, mapping: ClaimMapping): OwnerClaims {
  const all = token.claims as Record<string, unknown>;
  const subject = mapping.subject === "sub" ? token.subject : claim(all, mapping.subject);
  if (typeof subject !== "string" || subject.length === 0 || subject.length > MAX_TEXT) {
    throw new MayflyError(
      "token.claims_invalid",
      `the subject claim ${mapping.subject} is missing or not a string`,
      {
        field: mapping.subject,
      },
    );
  }
  const rawGroups = claim(all, mapping.groups);
  const list = typeof rawGroups === "string" ? [rawGroups] : Array.isArray(rawGroups) ? rawGroups : [];
  const groups = [...new Set(list.filter((g): g is string => typeof g === "string" && g.length > 0))]
    .slice(0, MAX_GROUPS)
    .map((g) => g.slice(0, MAX_TEXT));
  return {
    subject,
    email: text(claim(all, mapping.email)),
    name: text(claim(all, mapping.name)),
    groups,
  };
}

/**
 * A login: finds the owner by (issuer, subject) and refreshes email, name and groups
 * from the claims, or creates the owner when owners.createOnLogin allows. Status,
 * manager and department belong to SCIM and are never taken from a token. Every
 * change is audited with the owner as actor. The caller decides what an inactive
 * owner may do.
 */
export async function loginOwner(
  tx: StoreTx,
  deps: { clock: Clock; random: Random; config: Config },
  token: VerifiedIdToken,
): Promise<{ owner: Owner; claims: OwnerClaims; created: boolean }> {
  const { clock, random, config } = deps;
  const c = ownerClaims(token, config.owners.claims);
  const now = clock.now();
  const found = await tx.findOwnerBySubject(token.issuer, c.subject);
  if (!found) {
    if (!config.owners.createOnLogin) {
      throw new MayflyError(
        "owner.not_provisioned",
        `${c.subject} at ${token.issuer} is not provisioned (owners.createOnLogin is false)`,
      );
    }
    const owner: Owner = {
      id: `own_${random.bytes(12).toString("base64url")}`,
      issuer: token.issuer,
      subject: c.subject,
      email: c.email,
      displayName: c.name,
      status: "active",
      manager: null,
      department: null,
      groups: c.groups,
      createdAt: now,
      updatedAt: now,
    };
    await tx.insertOwner(owner);
    await appendAudit(tx, clock, {
      type: "owner.create",
      decision: "allow",
      code: null,
      actor: `owner:${owner.id}`,
      subject: `owner:${owner.id}`,
      data: { source: "login", issuer: owner.issuer, subject: owner.subject, email: owner.email },
    });
    return { owner, claims: c, created: true };
  }
  const same =
    found.email === c.email &&
    found.displayName === c.name &&
    JSON.stringify(found.groups ?? []) === JSON.stringify(c.groups);
  if (same) return { owner: found, claims: c, created: false };
  const owner: Owner = { ...found, email: c.email, displayName: c.name, groups: c.groups, updatedAt: now };
  await tx.updateOwner(owner);
  await appendAudit(tx, clock, {
    type: "owner.update",
    decision: "allow",
    code: null,
    actor: `owner:${owner.id}`,
    subject: `owner:${owner.id}`,
    data: { source: "login", email: owner.email, displayName: owner.displayName, groups: owner.groups ?? [] },
  });
  return { owner, claims: c, created: false };
}

/** Is this login an administrator's? Only with owners.adminGroup set and present in the groups claim. */
export function isAdmin(claims: OwnerClaims, config: Config): boolean {
  const g = config.owners.adminGroup;
  return g !== null && claims.groups.includes(g);
}
