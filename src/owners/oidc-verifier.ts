import { decodeJwt, decodeProtectedHeader, importJWK, type JWK, type JWTPayload, jwtVerify } from "jose";
import type { IdTokenAlgorithm } from "../config/schema.js";
import { type ErrorCode, isMayflyError, MayflyError } from "../errors/index.js";
import type { Clock } from "../runtime/clock.js";
import type { FetchJson } from "./fetch-json.js";

export interface OidcVerifierOptions {
  /** Exact issuer, compared character for character with `iss` and the discovery document. */
  issuer: string;
  /** Accepted audiences (client ids); `azp`, when present, must be one of them too. */
  clientIds: readonly string[];
  algorithms: readonly IdTokenAlgorithm[];
  clockSkewMs: number;
  jwksCacheTtlMs: number;
  refetchCooldownMs: number;
  clock: Clock;
  fetchJson: FetchJson;
}

/** The facts a verified ID token establishes. Times in epoch ms. */
export interface VerifiedIdToken {
  issuer: string;
  subject: string;
  audience: string[];
  azp: string | null;
  authTime: number | null;
  issuedAt: number;
  expiresAt: number;
  claims: JWTPayload;
}

const MAX_TOKEN_LENGTH = 16_384;

// The key type each allowed algorithm needs, so a JWK of another type is never tried.
function keyFits(alg: IdTokenAlgorithm, jwk: JWK): boolean {
  if (alg.startsWith("RS") || alg.startsWith("PS")) return jwk.kty === "RSA";
  if (alg === "ES256") return jwk.kty === "EC" && jwk.crv === "P-256";
  if (alg === "ES384") return jwk.kty === "EC" && jwk.crv === "P-384";
  if (alg === "ES512") return jwk.kty === "EC" && jwk.crv === "P-521";
  return jwk.kty === "OKP" && (jwk.crv === "Ed25519" || jwk.crv === "Ed448");
}

/** Only the public members: a JWKS that (wrongly) carries private parts still yields a public key. */
function publicJwk(jwk: JWK): JWK {
  const pick = (names: string[]) =>
    Object.fromEntries(names.filter((n) => n in jwk).map((n) => [n, jwk[n as keyof JWK]])) as JWK;
  if (jwk.kty === "RSA") return pick(["kty", "n", "e"]);
  if (jwk.kty === "EC") return pick(["kty", "crv", "x", "y"]);
  return pick(["kty", "crv", "x"]);
}

function err(code: ErrorCode, detail: string, cause?: unknown): MayflyError {
  return new MayflyError(code, detail, cause === undefined ? {} : { cause });
}

// jose's error codes -> ours. Claim failures name the claim they are about.
function fromJose(e: unknown): MayflyError {
  if (isMayflyError(e)) return e;
  const je = e as { code?: string; claim?: string; message?: string };
  const msg = je.message ?? String(e);
  switch (je.code) {
    case "ERR_JWT_EXPIRED":
      return err("token.expired", msg, e);
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return err("token.algorithm_not_allowed", msg, e);
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return err("token.signature_invalid", msg, e);
    case "ERR_JWKS_NO_MATCHING_KEY":
      return err("token.key_unknown", msg, e);
    case "ERR_JWT_CLAIM_VALIDATION_FAILED":
      if (je.claim === "iss") return err("token.issuer_mismatch", msg, e);
      if (je.claim === "nbf") return err("token.not_yet_valid", msg, e);
      return err("token.claims_invalid", msg, e);
    default:
      return err("token.malformed", msg, e);
  }
}

/**
 * Verifies OIDC ID tokens from one issuer (OpenID Connect Core §3.1.3.7):
 * signature by a key the issuer publishes (discovery -> jwks_uri), an algorithm from
 * the allow-list, the exact issuer, our audience and azp, exp/nbf with a small skew and,
 * for consequential acts, a recent auth_time. Discovery and the JWKS are cached; a token
 * naming an unknown kid triggers one refetch (key rotation), at most once per cooldown,
 * so a flood of forged kids cannot turn the CA into a load generator for the IdP.
 * Time comes from the injected clock (jose's currentDate), never from the system.
 * The nonce is the logging-in client's to check (it sent it); Mayfly sees the token
 * after that, which is why consequential acts also demand a recent auth_time.
 */
export class OidcVerifier {
  private discovery: { jwksUri: string; fetchedAt: number } | null = null;
  private jwks: { keys: JWK[]; fetchedAt: number } | null = null;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | null = null;
  /** JWKS fetches performed, for tests and metrics. */
  fetches = 0;

  constructor(private readonly o: OidcVerifierOptions) {}

  get issuer(): string {
    return this.o.issuer;
  }

  async verify(token: unknown, opts: { maxAuthAge?: number | null } = {}): Promise<VerifiedIdToken> {
    const { o } = this;
    if (typeof token !== "string" || token.length === 0) throw err("token.missing", "no ID token");
    if (token.length > MAX_TOKEN_LENGTH || token.split(".").length !== 3) {
      throw err("token.malformed", "an ID token is a compact JWS of three parts");
    }
    let header: ReturnType<typeof decodeProtectedHeader>;
    let unverified: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch (e) {
      throw err("token.malformed", "the token header or payload is not base64url JSON", e);
    }
    // A JWT access token (RFC 9068) from the same IdP may name our client as audience
    // too; it proves an authorization, not a login, and never stands in for an ID token.
    if (typeof header.typ === "string" && /^(application\/)?at\+jwt$/i.test(header.typ)) {
      throw err("token.claims_invalid", "an access token is not an ID token");
    }
    const alg = header.alg;
    if (typeof alg !== "string" || !(o.algorithms as readonly string[]).includes(alg)) {
      throw err(
        "token.algorithm_not_allowed",
        `alg ${JSON.stringify(alg)} is not in ${o.algorithms.join(", ")}`,
      );
    }
    // Rejected before any key is fetched: a foreign issuer's token says nothing about ours.
    if (unverified.iss !== o.issuer) {
      throw err("token.issuer_mismatch", `iss ${JSON.stringify(unverified.iss)} is not ${o.issuer}`);
    }

    const now = o.clock.now();
    let payload: JWTPayload;
    try {
      const r = await jwtVerify(token, (h) => this.keyFor(h.alg as IdTokenAlgorithm, h.kid), {
        issuer: o.issuer,
        algorithms: [...o.algorithms],
        clockTolerance: Math.floor(o.clockSkewMs / 1000),
        currentDate: new Date(now),
        requiredClaims: ["sub", "exp", "iat"],
      });
      payload = r.payload;
    } catch (e) {
      throw fromJose(e);
    }

    const audience = typeof payload.aud === "string" ? [payload.aud] : (payload.aud ?? []);
    if (!audience.some((a) => o.clientIds.includes(a))) {
      throw err("token.audience_mismatch", `aud ${JSON.stringify(payload.aud)} names none of our clients`);
    }
    const azp = payload.azp;
    if (azp !== undefined && (typeof azp !== "string" || !o.clientIds.includes(azp))) {
      throw err("token.azp_mismatch", `azp ${JSON.stringify(azp)} is not one of our clients`);
    }
    if (audience.length > 1 && azp === undefined) {
      throw err("token.azp_mismatch", "a token for several audiences must name its authorized party (azp)");
    }
    const sub = payload.sub;
    if (typeof sub !== "string" || sub.length === 0 || sub.length > 255) {
      throw err("token.claims_invalid", "sub must be 1-255 characters");
    }
    let authTime: number | null = null;
    if (payload.auth_time !== undefined) {
      if (typeof payload.auth_time !== "number" || !Number.isFinite(payload.auth_time)) {
        throw err("token.claims_invalid", "auth_time must be a number");
      }
      authTime = Math.floor(payload.auth_time * 1000);
      if (authTime > now + o.clockSkewMs) throw err("token.claims_invalid", "auth_time is in the future");
    }
    if (opts.maxAuthAge !== undefined && opts.maxAuthAge !== null) {
      if (authTime === null) {
        throw err("token.auth_stale", "the token has no auth_time; log in again (max_age or prompt=login)");
      }
      const age = now - authTime;
      if (age > opts.maxAuthAge + o.clockSkewMs) {
        throw err(
          "token.auth_stale",
          `the login is ${Math.round(age / 1000)} s old; this act needs one within ${opts.maxAuthAge / 1000} s`,
        );
      }
    }
    return {
      issuer: o.issuer,
      subject: sub,
      audience,
      azp: typeof azp === "string" ? azp : null,
      authTime,
      issuedAt: (payload.iat ?? 0) * 1000,
      expiresAt: (payload.exp ?? 0) * 1000,
      claims: payload,
    };
  }

  /** The verification key for (alg, kid), refetching the JWKS once if the kid is unknown. */
  private async keyFor(alg: IdTokenAlgorithm, kid: string | undefined) {
    await this.refresh(false);
    let jwk = this.pick(alg, kid);
    if (!jwk) {
      await this.refresh(true);
      jwk = this.pick(alg, kid);
    }
    if (!jwk) {
      throw err(
        "token.key_unknown",
        kid === undefined
          ? `no single ${alg} key in the issuer's JWKS and the token names no kid`
          : `kid ${JSON.stringify(kid)} is not in the issuer's JWKS for ${alg}`,
      );
    }
    try {
      return await importJWK(publicJwk(jwk), alg);
    } catch (e) {
      throw err("idp.unavailable", `the issuer's key ${JSON.stringify(kid)} cannot be imported`, e);
    }
  }

  private pick(alg: IdTokenAlgorithm, kid: string | undefined): JWK | null {
    const keys = (this.jwks?.keys ?? []).filter(
      (k) =>
        keyFits(alg, k) &&
        (k.use === undefined || k.use === "sig") &&
        (k.alg === undefined || k.alg === alg) &&
        (k.key_ops === undefined || k.key_ops.includes("verify")),
    );
    if (kid !== undefined) return keys.find((k) => k.kid === kid) ?? null;
    return keys.length === 1 ? keys[0]! : null;
  }

  /**
   * Fetches the JWKS when the cache is empty or older than the TTL, or when `unknownKid`
   * and the cooldown since the last attempt has passed. A failed fetch keeps the old
   * keys (an IdP outage does not lock out owners whose keys are cached); with no keys at
   * all it is idp.unavailable.
   */
  private async refresh(unknownKid: boolean): Promise<void> {
    const now = this.o.clock.now();
    if (!this.inflight) {
      const stale = this.jwks === null || now - this.jwks.fetchedAt >= this.o.jwksCacheTtlMs;
      if (!stale && !unknownKid) return;
      if (now - this.lastAttempt < this.o.refetchCooldownMs) {
        if (this.jwks) return;
        throw err("idp.unavailable", "the identity provider's keys could not be fetched; retrying later");
      }
      this.lastAttempt = now;
      this.inflight = this.fetchKeys(now).finally(() => {
        this.inflight = null;
      });
    }
    try {
      await this.inflight;
    } catch (e) {
      if (this.jwks !== null) return;
      throw isMayflyError(e) ? e : err("idp.unavailable", `the identity provider's keys: ${String(e)}`, e);
    }
  }

  private async fetchKeys(now: number): Promise<void> {
    const { o } = this;
    if (!this.discovery || now - this.discovery.fetchedAt >= o.jwksCacheTtlMs) {
      const url = `${o.issuer.replace(/\/$/, "")}/.well-known/openid-configuration`;
      const doc = (await o.fetchJson(url)) as { issuer?: unknown; jwks_uri?: unknown } | null;
      // OpenID Connect Discovery §4.3: the document must name exactly our issuer.
      if (!doc || doc.issuer !== o.issuer) {
        throw err("idp.unavailable", `the discovery document names issuer ${JSON.stringify(doc?.issuer)}`);
      }
      if (typeof doc.jwks_uri !== "string" || !doc.jwks_uri.startsWith("https://")) {
        throw err("idp.unavailable", "the discovery document has no https jwks_uri");
      }
      this.discovery = { jwksUri: doc.jwks_uri, fetchedAt: now };
    }
    this.fetches++;
    const set = (await o.fetchJson(this.discovery.jwksUri)) as { keys?: unknown } | null;
    if (!set || !Array.isArray(set.keys)) throw err("idp.unavailable", "the JWKS has no keys array");
    const keys = set.keys.filter((k): k is JWK => typeof k === "object" && k !== null && "kty" in k);
    this.jwks = { keys, fetchedAt: now };
  }
}
