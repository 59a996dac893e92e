import { createHash, createHmac, generateKeyPairSync } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { CompactSign } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TestCa } from "../helpers/test-ca.js";
import {
  auditHead,
  auditSince,
  expectAccepted,
  expectRefused,
  type JwksServer,
  jwks,
  type MdmKey,
  mdmKey,
  post,
  signed,
  startJwksServer,
  startMdmCa,
  tempDir,
} from "./helpers.js";

// POST /v1/hooks/mdm against a real Mayfly (HTTPS, SQLite): events signed with each allowed
// algorithm by keys from a JWKS served over loopback TLS (a throwaway CA, trusted through
// mdm.caFile), or read from a file. Every refusal answers problem+json with its code, writes
// exactly one audit event (a deny with that code) and changes nothing else: no device, agent,
// EK registration, jti or certificate.

const hex = (label: string) => createHash("sha256").update(label).digest("hex");
const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");

describe("MDM hook: JWKS over loopback HTTPS", () => {
  let srv: JwksServer;
  let ca: TestCa;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let es: MdmKey;
  let rs: MdmKey;
  let ed: MdmKey;
  const iso = (offsetMs: number) => new Date(ca.clock.now() + offsetMs).toISOString();
  const device = (mdmId: string) => ca.running.store.tx((tx) => tx.findDeviceByMdmId(mdmId));

  beforeAll(async () => {
    [es, rs, ed] = await Promise.all([mdmKey("ES256"), mdmKey("RS256"), mdmKey("EdDSA")]);
    srv = await startJwksServer(jwks(es, rs, ed));
    tmp = await tempDir();
    const caFile = await tmp.file("mdm-ca.pem", srv.caPem);
    ca = await startMdmCa(`  jwksUrl: "${srv.url}"
  caFile: "${caFile}"
  jwksRefetchCooldown: 10s
  bodyLimitBytes: 4096`);
  });
  afterAll(async () => {
    await ca?.close();
    await srv?.close();
    await tmp?.close();
  });

  it("accepts device.enrolled signed with ES256, RS256 and EdDSA; the device is managed and its EK registered", async () => {
    const mark = await auditHead(ca);
    for (const k of [es, rs, ed]) {
      const jws = await signed(ca, k, {
        type: "device.enrolled",
        mdmId: `mac-${k.alg}`,
        serial: `C02-${k.alg}`,
        ekPubHash: hex(`ek-${k.alg}`),
        assignedUser: "alice@example.test",
        platform: "macOS 14.5",
        compliant: true,
      });
      const out = await expectAccepted(ca, jws);
      expect(out).toMatchObject({ event: "device.enrolled", created: true, mdmId: `mac-${k.alg}` });
      const d = await device(`mac-${k.alg}`);
      expect(d).toMatchObject({
        id: out.deviceId,
        kind: "managed",
        status: "active",
        managed: true,
        compliant: true,
        serial: `C02-${k.alg}`,
        platform: "macOS 14.5",
        assignedUser: "alice@example.test",
        akPublic: null,
      });
      expect(d?.postureAt).toBe(Math.floor(ca.clock.now() / 1000) * 1000);
      expect(d?.mdmEventAt).toBe(d?.postureAt);
      const reg = await ca.running.store.tx((tx) =>
        tx.getEkRegistration(Buffer.from(hex(`ek-${k.alg}`), "hex")),
      );
      expect(reg).toMatchObject({ source: "mdm:testmdm" });
    }
    // One fetch of the JWKS served all three: it is cached.
    expect(srv.fetches).toBe(1);
    const events = await auditSince(ca, mark);
    expect(events.filter((e) => e.type === "mdm.device.enrolled").map((e) => e.actor)).toEqual([
      "mdm:testmdm",
      "mdm:testmdm",
      "mdm:testmdm",
    ]);
    expect(events.filter((e) => e.type === "device.ek.register")).toHaveLength(3);
    expect(events.every((e) => e.decision === "allow")).toBe(true);
  });

  it("applies events in event-time order: an older event never overrides a newer one; a same-time duplicate changes nothing", async () => {
    const t = (s: number) => iso(-120_000 + s * 1000);
    await expectAccepted(
      ca,
      await signed(ca, es, { type: "device.enrolled", mdmId: "order-1", compliant: true, occurredAt: t(0) }),
    );
    await expectAccepted(
      ca,
      await signed(ca, es, {
        type: "device.compliance_changed",
        mdmId: "order-1",
        compliant: false,
        reason: "FileVault off",
        occurredAt: t(30),
      }),
    );
    // A delayed "compliant" from before the flip must not undo it.
    const older = await signed(ca, rs, {
      type: "device.compliance_changed",
      mdmId: "order-1",
      compliant: true,
      occurredAt: t(10),
    });
    const { event } = await expectRefused(ca, "mdm.out_of_order", () => post(ca, older), 409);
    expect(event).toMatchObject({ actor: "mdm:testmdm", subject: "mdm-device:order-1" });
    // The same time but another verdict cannot be ordered either.
    const conflicting = await signed(ca, es, {
      type: "device.compliance_changed",
      mdmId: "order-1",
      compliant: true,
      occurredAt: t(30),
    });
    await expectRefused(ca, "mdm.out_of_order", () => post(ca, conflicting), 409);
    expect(await device("order-1")).toMatchObject({ compliant: false, complianceReason: "FileVault off" });
    // The same event again (new jti, as a resending MDM would sign it): accepted, nothing applied.
    const again = await signed(ca, ed, {
      type: "device.compliance_changed",
      mdmId: "order-1",
      compliant: false,
      reason: "FileVault off",
      occurredAt: t(30),
    });
    const before = await device("order-1");
    expect((await expectAccepted(ca, again, false)).deviceId).toBe(before?.id);
    expect(await device("order-1")).toEqual(before);
    // Newer: applied.
    await expectAccepted(
      ca,
      await signed(ca, es, {
        type: "device.compliance_changed",
        mdmId: "order-1",
        compliant: true,
        occurredAt: t(40),
      }),
    );
    expect(await device("order-1")).toMatchObject({ compliant: true, complianceReason: null });
  });

  it("refuses a bad signature (mdm.signature_invalid)", async () => {
    const impostor = await mdmKey("ES256", es.kid); // same kid, another key
    const forged = await signed(ca, impostor, { type: "device.unenrolled", mdmId: "mac-ES256" });
    await expectRefused(ca, "mdm.signature_invalid", () => post(ca, forged), 401);
    // A genuine signature over another payload.
    const genuine = await signed(ca, es, { type: "device.enrolled", mdmId: "mac-ES256", compliant: true });
    const [h, , s] = genuine.split(".");
    const swapped = `${h}.${b64({ type: "device.unenrolled", mdmId: "mac-ES256", jti: "x", iat: 1 })}.${s}`;
    await expectRefused(ca, "mdm.signature_invalid", () => post(ca, swapped), 401);
    expect(await device("mac-ES256")).toMatchObject({ status: "active" });
  });

  it('refuses alg "none", HS256 keyed with the public key, and algorithms off the list (mdm.algorithm_not_allowed)', async () => {
    const claims = {
      type: "device.unenrolled",
      mdmId: "mac-RS256",
      jti: "none-1",
      iat: Math.floor(ca.clock.now() / 1000),
    };
    const none = `${b64({ alg: "none", typ: "JWT" })}.${b64(claims)}.`;
    await expectRefused(ca, "mdm.algorithm_not_allowed", () => post(ca, none), 401);
    const input = `${b64({ alg: "HS256", kid: rs.kid })}.${b64(claims)}`;
    const mac = createHmac("sha256", JSON.stringify(rs.publicJwk)).update(input).digest("base64url");
    await expectRefused(ca, "mdm.algorithm_not_allowed", () => post(ca, `${input}.${mac}`), 401);
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-384" });
    const es384 = await new CompactSign(Buffer.from(JSON.stringify(claims)))
      .setProtectedHeader({ alg: "ES384", kid: es.kid })
      .sign(privateKey);
    await expectRefused(ca, "mdm.algorithm_not_allowed", () => post(ca, es384), 401);
    expect(await device("mac-RS256")).toMatchObject({ status: "active" });
  });

  it("refuses an unknown key (mdm.key_unknown); picks up a rotation on the next unknown kid after the cooldown", async () => {
    const next = await mdmKey("ES256");
    const event = () => signed(ca, next, { type: "device.enrolled", mdmId: "rotated-1", compliant: true });
    const fetches = srv.fetches;
    // Within the cooldown of the last read: refused without asking the MDM again.
    await expectRefused(ca, "mdm.key_unknown", async () => post(ca, await event()), 401);
    expect(srv.fetches).toBe(fetches);
    ca.clock.advance(11_000);
    // After it: read again, still not published.
    await expectRefused(ca, "mdm.key_unknown", async () => post(ca, await event()), 401);
    expect(srv.fetches).toBe(fetches + 1);
    // The MDM publishes the new key beside the old ones.
    srv.set(jwks(es, rs, ed, next));
    await expectRefused(ca, "mdm.key_unknown", async () => post(ca, await event()), 401);
    ca.clock.advance(11_000);
    await expectAccepted(ca, await event());
    expect(srv.fetches).toBe(fetches + 2);
    // The old keys still verify, from the cache (a second later: iat is the event time here).
    ca.clock.advance(1_000);
    await expectAccepted(
      ca,
      await signed(ca, es, { type: "device.compliance_changed", mdmId: "rotated-1", compliant: false }),
    );
    expect(srv.fetches).toBe(fetches + 2);
  });

  it("refuses a replayed jti (mdm.replayed), even re-signed", async () => {
    const jws = await signed(ca, rs, {
      type: "device.enrolled",
      mdmId: "replay-1",
      compliant: true,
      jti: "replay-jti",
    });
    await expectAccepted(ca, jws);
    await expectRefused(ca, "mdm.replayed", () => post(ca, jws), 409);
    ca.clock.advance(2_000);
    const resigned = await signed(ca, ed, {
      type: "device.compliance_changed",
      mdmId: "replay-1",
      compliant: false,
      jti: "replay-jti",
    });
    await expectRefused(ca, "mdm.replayed", () => post(ca, resigned), 409);
    expect(await device("replay-1")).toMatchObject({ compliant: true });
  });

  it("refuses a stale iat or exp (mdm.event_stale) and an event from the future (mdm.event_not_yet_valid)", async () => {
    const now = Math.floor(ca.clock.now() / 1000);
    const base = { type: "device.enrolled", mdmId: "time-1", compliant: true };
    const stale = await signed(ca, es, { ...base, iat: now - 6 * 60 }); // iatMaxAge 5m + clockSkew 30s
    await expectRefused(ca, "mdm.event_stale", () => post(ca, stale), 400);
    const expired = await signed(ca, es, { ...base, exp: now - 60 });
    await expectRefused(ca, "mdm.event_stale", () => post(ca, expired), 400);
    const future = await signed(ca, es, { ...base, iat: now + 120 });
    await expectRefused(ca, "mdm.event_not_yet_valid", () => post(ca, future), 400);
    const later = await signed(ca, es, { ...base, occurredAt: iso(120_000) });
    await expectRefused(ca, "mdm.event_not_yet_valid", () => post(ca, later), 400);
    // Within the age and the skew: fine.
    await expectAccepted(ca, await signed(ca, es, { ...base, iat: now - 4 * 60 }));
  });

  it("refuses malformed events (mdm.event_invalid, mdm.jws_malformed); a refused jti may be used once fixed", async () => {
    const ok = { type: "device.enrolled", mdmId: "shape-1", compliant: true, jti: "shape-jti" };
    const cases: Array<[string, Record<string, unknown>]> = [
      ["an unknown claim", { ...ok, complaint: false }],
      ["a missing compliant", { ...ok, compliant: undefined }],
      ["an unknown event type", { ...ok, type: "device.wiped" }],
      ["a bad EK hash", { ...ok, ekPubHash: "abc" }],
      ["both EK forms", { ...ok, ekPubHash: hex("x"), ekCertificate: "MIIB" }],
      ["an EK certificate that is not one", { ...ok, ekCertificate: b64("not a certificate") }],
      ["a spaced MDM id", { ...ok, mdmId: "a b" }],
      ["a non-numeric iat", { ...ok, iat: "yesterday" }],
      ["no jti", { ...ok, jti: undefined }],
    ];
    for (const [what, claims] of cases) {
      const { res } = await expectRefused(
        ca,
        "mdm.event_invalid",
        async () => post(ca, await signed(ca, es, claims)),
        400,
      );
      expect(res.text, what).toContain("mdm.event_invalid");
    }
    const notJson = await new CompactSign(Buffer.from("not json"))
      .setProtectedHeader({ alg: "ES256", kid: es.kid })
      .sign(es.privateKey);
    await expectRefused(ca, "mdm.event_invalid", () => post(ca, notJson), 400);
    for (const body of ["hello", "a.b", "a.b.c.d", `${b64("{")}.${b64({})}.sig`, ""]) {
      await expectRefused(ca, "mdm.jws_malformed", () => post(ca, body), 400);
    }
    // None of those used up the jti.
    await expectAccepted(ca, await signed(ca, es, ok));
  });

  it("refuses an oversized body (request.too_large) and a body that is not a JWS media type", async () => {
    const big = `${"a".repeat(3000)}.${"b".repeat(2000)}.c`;
    await expectRefused(ca, "request.too_large", () => post(ca, big), 413);
    const jws = await signed(ca, es, { type: "device.enrolled", mdmId: "media-1", compliant: true });
    await expectRefused(
      ca,
      "request.unsupported_media_type",
      () => post(ca, JSON.stringify({ jws }), "application/json"),
      415,
    );
    // The same JWS as text/plain, with the newline a shell adds: accepted.
    const res = await post(ca, `${jws}\n`, "text/plain");
    expect(res.status, res.text).toBe(200);
  });

  it("refuses events about devices it never enrolled (mdm.device_unknown) and an EK that is another device's (mdm.device_conflict)", async () => {
    const unknown = await signed(ca, es, {
      type: "device.compliance_changed",
      mdmId: "ghost",
      compliant: true,
    });
    await expectRefused(ca, "mdm.device_unknown", () => post(ca, unknown), 404);
    const gone = await signed(ca, es, { type: "device.unenrolled", mdmId: "ghost" });
    await expectRefused(ca, "mdm.device_unknown", () => post(ca, gone), 404);
    const thief = await signed(ca, es, {
      type: "device.enrolled",
      mdmId: "other-mac",
      ekPubHash: hex("ek-ES256"),
      compliant: true,
    });
    await expectRefused(ca, "mdm.device_conflict", () => post(ca, thief), 409);
  });

  it("without the MDM's CA, the JWKS is not fetched (mdm.unavailable); without any JWKS, mdm.not_configured", async () => {
    const strict = await startMdmCa(`  jwksUrl: "${srv.url}"`);
    try {
      const jws = await signed(strict, es, { type: "device.enrolled", mdmId: "tls-1", compliant: true });
      await expectRefused(strict, "mdm.unavailable", () => post(strict, jws), 503);
    } finally {
      await strict.close();
    }
    const off = await startMdmCa("");
    try {
      const jws = await signed(off, es, { type: "device.enrolled", mdmId: "off-1", compliant: true });
      await expectRefused(off, "mdm.not_configured", () => post(off, jws), 503);
    } finally {
      await off.close();
    }
  });
});

describe("MDM hook: JWKS from a file", () => {
  let ca: TestCa;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let path: string;
  let k1: MdmKey;

  beforeAll(async () => {
    k1 = await mdmKey("EdDSA");
    tmp = await tempDir();
    path = await tmp.file("jwks.json", JSON.stringify(jwks(k1)));
    ca = await startMdmCa(`  jwksFile: "${path}"\n  jwksRefetchCooldown: 5s`);
  });
  afterAll(async () => {
    await ca?.close();
    await tmp?.close();
  });

  it("verifies events with the file's keys and re-reads the file for a rotated key after the cooldown", async () => {
    await expectAccepted(
      ca,
      await signed(ca, k1, { type: "device.enrolled", mdmId: "file-1", compliant: true }),
    );
    const k2 = await mdmKey("RS256");
    await writeFile(path, JSON.stringify(jwks(k1, k2)));
    const event = () =>
      signed(ca, k2, { type: "device.compliance_changed", mdmId: "file-1", compliant: false });
    await expectRefused(ca, "mdm.key_unknown", async () => post(ca, await event()), 401);
    ca.clock.advance(6_000);
    await expectAccepted(ca, await event());
  });

  it("a JWKS file without a usable key stops the start (config.invalid)", async () => {
    const empty = await tmp.file("empty.json", JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0" }] }));
    await expect(startMdmCa(`  jwksFile: "${empty}"`)).rejects.toMatchObject({ code: "config.invalid" });
  });
});
