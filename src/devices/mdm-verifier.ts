import { compactVerify, decodeProtectedHeader, importJWK, type JWK } from "jose";
import type { MdmAlgorithm } from "../config/schema.js";
import { type ErrorCode, isMayflyError, MayflyError } from "../errors/index.js";
import type { Clock } from "../runtime/clock.js";

// The signature half of the device-management hook (issue 8): a compact JWS, signed by a
// key the MDM publishes in its JWKS, with an algorithm from the allow-list, fresh (iat),
// and for us (iss, aud when configured). What the event says is devices/mdm-events.ts's
// to parse; what it changes is authority/mdm-hook.ts's to decide.

/** Reads the MDM's JWKS document (a file or an https URL); throws mdm.unavailable. */
export type JwksLoader = () => Promise<unknown>;

export interface MdmVerifierOptions {
  algorithms: readonly MdmAlgorithm[];
  /** Required `iss`; null: not checked. */
  issuer: string | null;
  /** Required `aud` (or one of them); null: not checked. */
  audience: string | null;
  iatMaxAgeMs: number;
  clockSkewMs: number;
  jwksCacheTtlMs: number;
  refetchCooldownMs: number;
  clock: Clock;
  loadJwks: JwksLoader;
  /** Where the keys come from, for messages ("file /etc/…", "https://…"). */
  source: string;
}

/** What a verified event establishes. Times in epoch ms. */
export interface VerifiedMdmJws {
  alg: MdmAlgorithm;
  kid: string | null;
  jti: string;
  issuedAt: number;
  /** Until when the jti must be remembered: after it, iat is too old to be accepted anyway. */
  replayWindowEnd: number;
  /** The whole payload, registered claims included; its event claims are not yet checked. */
  claims: Record<string, unknown>;
}

/** A compact JWS: header.payload.signature, base64url; an empty signature is alg none's. */
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const MAX_JWS_LENGTH = 1_048_576;

function err(code: ErrorCode, detail: string, cause?: unknown): MayflyError {
  return new MayflyError(code, detail, cause === undefined ? {} : { cause });
}

// The key type each allowed algorithm needs, so a JWK of another type is never tried.
function keyFits(alg: MdmAlgorithm, jwk: JWK): boolean {
  if (alg === "RS256") return jwk.kty === "RSA";
  if (alg === "ES256") return jwk.kty === "EC" && jwk.crv === "P-256";
  return jwk.kty === "OKP" && jwk.crv === "Ed25519";
}

/** Only the public members: a JWKS that (wrongly) carries private parts still yields a public key. */
function publicJwk(jwk: JWK): JWK {
  const pick = (names: string[]) =>
    Object.fromEntries(names.filter((n) => n in jwk).map((n) => [n, jwk[n as keyof JWK]])) as JWK;
  if (jwk.kty === "RSA") return pick(["kty", "n", "e"]);
  if (jwk.kty === "EC") return pick(["kty", "crv", "x", "y"]);
  return pick(["kty", "crv", "x"]);
}

function numericDate(v: unknown, name: string): number | null {
  if (v === undefined) return null;
  if (typeof v !== "number" || !Number.isFinite(v) || v < 0) {
    throw err("mdm.event_invalid", `${name} must be a NumericDate (seconds since the epoch)`);
  }
  return Math.floor(v * 1000);
}

/**
 * Verifies MDM hook events. The JWKS is cached (jwksCacheTtl); an event naming an unknown
 * kid causes one re-read (key rotation), at most once per cooldown, so a flood of forged
 * kids cannot turn the CA into a load generator for the MDM. A failed read keeps the keys
 * already held. Time comes from the injected clock, never from the system.
 */
export class MdmVerifier {
  private jwks: { keys: JWK[]; fetchedAt: number } | null = null;
  private lastAttempt = Number.NEGATIVE_INFINITY;
  private inflight: Promise<void> | null = null;
  /** JWKS reads performed, for tests and metrics. */
  fetches = 0;

  constructor(private readonly o: MdmVerifierOptions) {}

  /** Reads the keys now (start-up); throws what the loader throws, or mdm.unavailable for no usable key. */
  async load(): Promise<number> {
    this.lastAttempt = this.o.clock.now();
    await this.fetchKeys(this.lastAttempt);
    const usable = this.jwks!.keys.filter((k) => this.o.algorithms.some((a) => keyFits(a, k)));
    if (usable.length === 0) {
      throw err("mdm.unavailable", `${this.o.source} has no key for ${this.o.algorithms.join(", ")}`);
    }
    return usable.length;
  }

  async verify(body: unknown): Promise<VerifiedMdmJws> {
    const { o } = this;
    if (typeof body !== "string") throw err("mdm.jws_malformed", "send the event as a compact JWS");
    const jws = body.trim();
    if (jws.length > MAX_JWS_LENGTH || !COMPACT_JWS.test(jws)) {
      throw err("mdm.jws_malformed", "an event is a compact JWS: three base64url parts joined by dots");
    }
    let header: ReturnType<typeof decodeProtectedHeader>;
    try {
      header = decodeProtectedHeader(jws);
    } catch (e) {
      throw err("mdm.jws_malformed", "the JWS header is not base64url JSON", e);
    }
    const alg = header.alg;
    if (typeof alg !== "string" || !(o.algorithms as readonly string[]).includes(alg)) {
      throw err(
        "mdm.algorithm_not_allowed",
        `alg ${JSON.stringify(alg)} is not in ${o.algorithms.join(", ")}`,
      );
    }
    const kid = typeof header.kid === "string" ? header.kid : null;
    if (header.kid !== undefined && kid === null) throw err("mdm.jws_malformed", "kid must be a string");
    const key = await this.keyFor(alg as MdmAlgorithm, kid);
    let payload: Uint8Array;
    try {
      ({ payload } = await compactVerify(jws, key, { algorithms: [alg] }));
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === "ERR_JWS_SIGNATURE_VERIFICATION_FAILED") {
        throw err("mdm.signature_invalid", "the event signature does not verify", e);
      }
      throw err("mdm.jws_malformed", (e as Error).message ?? String(e), e);
    }

    let claims: unknown;
    try {
      claims = JSON.parse(Buffer.from(payload).toString("utf8"));
    } catch (e) {
      throw err("mdm.event_invalid", "the JWS payload is not JSON", e);
    }
    if (typeof claims !== "object" || claims === null || Array.isArray(claims)) {
      throw err("mdm.event_invalid", "the JWS payload is not a JSON object");
    }
    const c = claims as Record<string, unknown>;
    if (o.issuer !== null && c.iss !== o.issuer) {
      throw err("mdm.issuer_mismatch", `iss ${JSON.stringify(c.iss)} is not ${JSON.stringify(o.issuer)}`);
    }
    if (o.audience !== null) {
      const aud = typeof c.aud === "string" ? [c.aud] : Array.isArray(c.aud) ? c.aud : [];
      if (!aud.includes(o.audience)) {
        throw err("mdm.audience_mismatch", `aud ${JSON.stringify(c.aud)} does not name ${o.audience}`);
      }
    }
    if (typeof c.jti !== "string" || c.jti.length === 0 || c.jti.length > 255) {
      throw err("mdm.event_invalid", "jti must be a string of 1-255 characters");
    }
    const iat = numericDate(c.iat, "iat");
    if (iat === null) throw err("mdm.event_invalid", "iat is required");
    const exp = numericDate(c.exp, "exp");
    const nbf = numericDate(c.nbf, "nbf");
    const now = o.clock.now();
    const skew = o.clockSkewMs;
    if (iat > now + skew) throw err("mdm.event_not_yet_valid", `iat is ${iat - now} ms in the future`);
    if (nbf !== null && nbf > now + skew) throw err("mdm.event_not_yet_valid", "nbf is in the future");
    if (now - iat > o.iatMaxAgeMs + skew) {
      throw err(
        "mdm.event_stale",
        `iat is ${Math.round((now - iat) / 1000)} s old; events must be signed within ${o.iatMaxAgeMs / 1000} s`,
      );
    }
    if (exp !== null && exp + skew <= now) throw err("mdm.event_stale", "the event has expired (exp)");
    return {
      alg: alg as MdmAlgorithm,
      kid,
      jti: c.jti,
      issuedAt: iat,
      replayWindowEnd: iat + o.iatMaxAgeMs + skew,
      claims: c,
    };
  }

  /** The verification key for (alg, kid), re-reading the JWKS once if the kid is unknown. */
  private async keyFor(alg: MdmAlgorithm, kid: string | null) {
    await this.refresh(false);
    let jwk = this.pick(alg, kid);
    if (!jwk) {
      await this.refresh(true);
      jwk = this.pick(alg, kid);
    }
    if (!jwk) {
      throw err(
        "mdm.key_unknown",
        kid === null
          ? `no single ${alg} key in the MDM's JWKS and the event names no kid`
          : `kid ${JSON.stringify(kid)} is not in the MDM's JWKS for ${alg}`,
      );
    }
    try {
      return await importJWK(publicJwk(jwk), alg);
    } catch (e) {
      throw err("mdm.unavailable", `the MDM's key ${JSON.stringify(kid)} cannot be imported`, e);
    }
  }

  private pick(alg: MdmAlgorithm, kid: string | null): JWK | null {
    const keys = (this.jwks?.keys ?? []).filter(
      (k) =>
        keyFits(alg, k) &&
        (k.use === undefined || k.use === "sig") &&
        (k.alg === undefined || k.alg === alg) &&
        (k.key_ops === undefined || k.key_ops.includes("verify")),
    );
    if (kid !== null) return keys.find((k) => k.kid === kid) ?? null;
    return keys.length === 1 ? keys[0]! : null;
  }

  /**
   * Reads the JWKS when none is held or it is older than the TTL, or when `unknownKid`
   * and the cooldown since the last attempt has passed. A failed read keeps the old keys;
   * with none at all it is mdm.unavailable.
   */
  private async refresh(unknownKid: boolean): Promise<void> {
    const now = this.o.clock.now();
    if (!this.inflight) {
      const stale = this.jwks === null || now - this.jwks.fetchedAt >= this.o.jwksCacheTtlMs;
      if (!stale && !unknownKid) return;
      if (now - this.lastAttempt < this.o.refetchCooldownMs) {
        if (this.jwks) return;
        throw err("mdm.unavailable", `the MDM's keys (${this.o.source}) could not be read; retrying later`);
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
      throw isMayflyError(e) ? e : err("mdm.unavailable", `the MDM's keys: ${String(e)}`, e);
    }
  }

  private async fetchKeys(now: number): Promise<void> {
    this.fetches++;
    const set = (await this.o.loadJwks()) as { keys?: unknown } | null;
    if (!set || typeof set !== "object" || !Array.isArray(set.keys)) {
      throw err("mdm.unavailable", `${this.o.source} is not a JWKS (no keys array)`);
    }
    const keys = set.keys.filter((k): k is JWK => typeof k === "object" && k !== null && "kty" in k);
    this.jwks = { keys, fetchedAt: now };
  }
}
