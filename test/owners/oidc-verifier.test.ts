import { createHmac, createPublicKey } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMayflyError } from "../../src/errors/index.js";
import { ownerClaims } from "../../src/owners/claims.js";
import { type FetchJson, httpsJsonFetcher } from "../../src/owners/fetch-json.js";
import { OidcVerifier } from "../../src/owners/oidc-verifier.js";
import { ManualClock } from "../../src/runtime/clock.js";
import { MAYFLY_CLIENT, OTHER_CLIENT, startIdp, type TestIdp } from "./helpers/idp.js";

// Every token here comes from a real OpenID Provider (oidc-provider) over TLS; the
// attacks (alg none, HS256 keyed with the public key) are built from its real tokens.

let idp: TestIdp;
let foreign: TestIdp; // another issuer altogether
let impostor: TestIdp; // claims our issuer, signs with its own key
let twin: TestIdp; // claims our issuer and our kid, with another key

beforeAll(async () => {
  idp = await startIdp();
  foreign = await startIdp();
  impostor = await startIdp({ issuer: idp.issuer });
  twin = await startIdp({ issuer: idp.issuer, kid: idp.kids()[0]! });
  for (const p of [idp, foreign, impostor, twin]) {
    p.accounts.set("alice", {
      email: "alice@example.test",
      name: "Alice Ünïcødé",
      groups: ["eng", "mayfly-admins"],
    });
  }
});
afterAll(async () => {
  await Promise.all([idp, foreign, impostor, twin].map((p) => p?.close()));
});

function verifier(
  over: { clock?: ManualClock; fetchJson?: FetchJson; cooldownMs?: number; ttlMs?: number } = {},
) {
  const clock = over.clock ?? new ManualClock(Date.now());
  let fetches = 0;
  const real = httpsJsonFetcher({ ca: idp.caPem, timeoutMs: 5000 });
  const v = new OidcVerifier({
    issuer: idp.issuer,
    clientIds: [MAYFLY_CLIENT],
    algorithms: ["RS256", "ES256"],
    clockSkewMs: 30_000,
    jwksCacheTtlMs: over.ttlMs ?? 3_600_000,
    refetchCooldownMs: over.cooldownMs ?? 30_000,
    clock,
    fetchJson:
      over.fetchJson ??
      ((url) => {
        fetches++;
        return real(url);
      }),
  });
  return { v, clock, fetches: () => fetches };
}

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (isMayflyError(e)) return e.code;
    throw e;
  }
  return "resolved";
}

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");

describe("OIDC ID-token verification against a real provider", () => {
  it("accepts a fresh token and returns its facts; the claims map onto an owner", async () => {
    const { v } = verifier();
    const { idToken, claims } = await idp.login({ account: "alice" });
    const t = await v.verify(idToken, { maxAuthAge: 600_000 });
    expect(t).toMatchObject({ issuer: idp.issuer, subject: "alice", audience: [MAYFLY_CLIENT], azp: null });
    expect(t.authTime).toBe((claims.auth_time as number) * 1000);
    expect(ownerClaims(t, { subject: "sub", email: "email", name: "name", groups: "groups" })).toEqual({
      subject: "alice",
      email: "alice@example.test",
      name: "Alice Ünïcødé",
      groups: ["eng", "mayfly-admins"],
    });
  });

  it("a token for another client is token.audience_mismatch", async () => {
    const { v } = verifier();
    const { idToken } = await idp.login({ account: "alice", clientId: OTHER_CLIENT });
    expect(await code(v.verify(idToken))).toBe("token.audience_mismatch");
  });

  it("an authorized party that is not ours is token.azp_mismatch", async () => {
    const { v } = verifier();
    idp.accounts.set("carol", { azp: OTHER_CLIENT });
    const { idToken, claims } = await idp.login({ account: "carol" });
    expect(claims).toMatchObject({ aud: MAYFLY_CLIENT, azp: OTHER_CLIENT });
    expect(await code(v.verify(idToken))).toBe("token.azp_mismatch");
  });

  it("another issuer is token.issuer_mismatch, before anything is fetched for it", async () => {
    const { v, fetches } = verifier();
    const { idToken } = await foreign.login({ account: "alice" });
    expect(await code(v.verify(idToken))).toBe("token.issuer_mismatch");
    expect(fetches()).toBe(0);
  });

  it("an expired token is token.expired (the injected clock, past exp plus skew)", async () => {
    const { v, clock } = verifier();
    const { idToken, claims } = await idp.login({ account: "alice" });
    await v.verify(idToken);
    clock.set((claims.exp as number) * 1000 + 29_000);
    await v.verify(idToken); // within the skew
    clock.set((claims.exp as number) * 1000 + 31_000);
    expect(await code(v.verify(idToken))).toBe("token.expired");
  });

  it("a token issued in the verifier's future is token.not_yet_valid or claims_invalid, never accepted", async () => {
    const { v, clock } = verifier();
    const { idToken, claims } = await idp.login({ account: "alice" });
    clock.set((claims.iat as number) * 1000 - 3_600_000);
    expect(["token.not_yet_valid", "token.claims_invalid"]).toContain(await code(v.verify(idToken)));
  });

  it("a stale auth_time is token.auth_stale for a consequential act, fine for a plain login", async () => {
    const { v } = verifier();
    const { idToken } = await idp.login({ account: "alice", authAgeSeconds: 20 * 60 });
    expect(await code(v.verify(idToken, { maxAuthAge: 10 * 60_000 }))).toBe("token.auth_stale");
    expect((await v.verify(idToken)).subject).toBe("alice");
    const fresh = await idp.login({ account: "alice", authAgeSeconds: 9 * 60 });
    expect((await v.verify(fresh.idToken, { maxAuthAge: 10 * 60_000 })).subject).toBe("alice");
  });

  it('alg "none" is token.algorithm_not_allowed', async () => {
    const { v } = verifier();
    const { idToken } = await idp.login({ account: "alice" });
    const [, payload] = idToken.split(".");
    const forged = `${b64({ alg: "none", typ: "JWT" })}.${payload}.`;
    expect(await code(v.verify(forged))).toBe("token.algorithm_not_allowed");
  });

  it("HS256 keyed with the provider's public key is token.algorithm_not_allowed", async () => {
    const { v } = verifier();
    const { idToken } = await idp.login({ account: "alice" });
    const [h, payload] = idToken.split(".");
    const kid = JSON.parse(Buffer.from(h!, "base64url").toString()).kid as string;
    const jwks = (await httpsJsonFetcher({ ca: idp.caPem, timeoutMs: 5000 })(`${idp.url}/jwks`)) as {
      keys: { kid: string }[];
    };
    const pub = createPublicKey({ key: jwks.keys.find((k) => k.kid === kid)!, format: "jwk" });
    for (const secret of [pub.export({ type: "spki", format: "pem" }), JSON.stringify(jwks.keys[0])]) {
      const head = b64({ alg: "HS256", kid });
      const sig = createHmac("sha256", secret).update(`${head}.${payload}`).digest("base64url");
      expect(await code(v.verify(`${head}.${payload}.${sig}`))).toBe("token.algorithm_not_allowed");
    }
  });

  it("a key the issuer does not publish is token.key_unknown; the same kid with another key is signature_invalid", async () => {
    const { v } = verifier();
    const own = await idp.login({ account: "alice" });
    await v.verify(own.idToken);
    const fake = await impostor.login({ account: "alice" });
    expect(await code(v.verify(fake.idToken))).toBe("token.key_unknown");
    const same = await twin.login({ account: "alice" });
    expect(await code(v.verify(same.idToken))).toBe("token.signature_invalid");
  });

  it("a tampered payload is token.signature_invalid; garbage is token.malformed; no token is token.missing", async () => {
    const { v } = verifier();
    const { idToken, claims } = await idp.login({ account: "alice" });
    const [h, , s] = idToken.split(".");
    const evil = `${h}.${b64({ ...claims, sub: "mallory" })}.${s}`;
    expect(await code(v.verify(evil))).toBe("token.signature_invalid");
    expect(await code(v.verify("not.a.jwt"))).toBe("token.malformed");
    expect(await code(v.verify("a.b.c.d.e"))).toBe("token.malformed");
    expect(await code(v.verify(""))).toBe("token.missing");
    const asAccessToken = `${b64({ alg: "RS256", typ: "at+jwt" })}.${idToken.split(".")[1]}.${s}`;
    expect(await code(v.verify(asAccessToken))).toBe("token.claims_invalid");
  });

  it("picks up a rotated JWKS without restart: unknown kid within the cooldown, accepted after it", async () => {
    const { v, clock, fetches } = verifier({ cooldownMs: 30_000 });
    await v.verify((await idp.login({ account: "alice" })).idToken);
    expect(fetches()).toBe(2); // discovery + JWKS
    const newKid = await idp.rotate();
    const rotated = await idp.login({ account: "alice" });
    expect(JSON.parse(Buffer.from(rotated.idToken.split(".")[0]!, "base64url").toString()).kid).toBe(newKid);
    // Fetched at the same instant: the cooldown holds the refetch back.
    expect(await code(v.verify(rotated.idToken))).toBe("token.key_unknown");
    expect(fetches()).toBe(2);
    clock.advance(30_000);
    expect((await v.verify(rotated.idToken)).subject).toBe("alice");
    expect(fetches()).toBe(3); // the JWKS only; discovery stays cached
    // A flood of unknown kids costs at most one fetch per cooldown.
    const fake = await impostor.login({ account: "alice" });
    for (let i = 0; i < 5; i++) expect(await code(v.verify(fake.idToken))).toBe("token.key_unknown");
    expect(fetches()).toBe(3);
  });

  it("keeps cached keys through an IdP outage; with nothing cached it is idp.unavailable", async () => {
    let up = true;
    const real = httpsJsonFetcher({ ca: idp.caPem, timeoutMs: 5000 });
    const flaky: FetchJson = (url) => (up ? real(url) : Promise.reject(new Error("down")));
    const { v, clock } = verifier({ fetchJson: flaky, ttlMs: 60_000 });
    const { idToken } = await idp.login({ account: "alice" });
    await v.verify(idToken);
    up = false;
    clock.advance(10 * 60_000); // well past the JWKS TTL, before exp
    expect((await v.verify(idToken)).subject).toBe("alice");
    clock.advance(60_000);
    expect((await v.verify(idToken)).subject).toBe("alice");
    const cold = verifier({ fetchJson: flaky });
    expect(await code(cold.v.verify(idToken))).toBe("idp.unavailable");
  });

  it("refuses an IdP whose TLS certificate is not from the configured CA", async () => {
    const { v } = verifier({ fetchJson: httpsJsonFetcher({ ca: foreign.caPem, timeoutMs: 5000 }) });
    const { idToken } = await idp.login({ account: "alice" });
    expect(await code(v.verify(idToken))).toBe("idp.unavailable");
  });
});
