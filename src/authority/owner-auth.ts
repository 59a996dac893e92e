import type { Config } from "../config/schema.js";
import { MayflyError } from "../errors/index.js";
import { isAdmin, loginOwner, type OwnerClaims } from "../owners/claims.js";
import type { OidcVerifier, VerifiedIdToken } from "../owners/oidc-verifier.js";
import type { Clock, Random } from "../runtime/clock.js";
import type { Store, StoreTx } from "../store/store.js";
import type { Owner } from "../store/types.js";

export interface OwnerApiDeps {
  store: Store;
  clock: Clock;
  random: Random;
  config: Config;
  /** null when owners.oidc.issuer is not configured: the owner API answers idp.not_configured. */
  oidc: OidcVerifier | null;
}

/** The ID token from `Authorization: Bearer <token>`. */
export function bearerToken(authorization: string | undefined): string {
  const m = /^Bearer +([A-Za-z0-9._~+/=-]+)\s*$/i.exec(authorization ?? "");
  if (!m) throw new MayflyError("token.missing", "send Authorization: Bearer <ID token>");
  return m[1]!;
}

/**
 * Verifies the owner's ID token. `fresh` acts (registration, re-affirmation, transfers)
 * need a login within owners.authMaxAge: a token lifted from a log or a laptop an hour
 * later cannot bind a new agent to its owner.
 */
export async function verifyOwnerToken(
  deps: OwnerApiDeps,
  authorization: string | undefined,
  fresh: boolean,
): Promise<VerifiedIdToken> {
  if (!deps.oidc) throw new MayflyError("idp.not_configured", "owners.oidc.issuer is not configured");
  const token = bearerToken(authorization);
  return deps.oidc.verify(token, { maxAuthAge: fresh ? deps.config.owners.authMaxAge : null });
}

export interface Login {
  token: VerifiedIdToken;
  owner: Owner;
  claims: OwnerClaims;
  admin: boolean;
}

/** The login inside the caller's transaction: the owner is upserted from the claims. */
export async function login(tx: StoreTx, deps: OwnerApiDeps, token: VerifiedIdToken): Promise<Login> {
  const { owner, claims } = await loginOwner(tx, deps, token);
  return { token, owner, claims, admin: isAdmin(claims, deps.config) };
}

export function requireActive(owner: Owner): void {
  if (owner.status !== "active") {
    throw new MayflyError("owner.inactive", `owner ${owner.id} is ${owner.status}`);
  }
}

/** Only a login whose groups claim holds owners.adminGroup; none at all when it is not configured. */
export function requireAdmin(l: Login): void {
  if (!l.admin)
    throw new MayflyError("admin.required", `owner ${l.owner.id} is not in the administrators' group`);
}
