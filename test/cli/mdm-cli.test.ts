import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { compactVerify, createLocalJWKSet, decodeProtectedHeader } from "jose";
import { afterAll, describe, expect, it } from "vitest";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import { expectAccepted, startMdmCa } from "../e2e-mdm/helpers.js";
import { mayfly } from "../helpers/cli.js";
import { agent, bytes, device, ekRegistration, owner } from "../store/fixtures.js";

// `mayfly hook sign|jwks` (what an MDM-side script runs) and `mayfly device
// list|show|unenroll` (the inventory, for administrators on the CA host), as processes.

const dir = mkdtempSync(join(tmpdir(), "mayfly-cli-mdm-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe("mayfly hook", () => {
  it("--help explains sign and jwks", async () => {
    const h = await mayfly(["hook", "--help"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toMatch(/^\s+sign\b/m);
    expect(h.stdout).toMatch(/^\s+jwks\b/m);
    const s = await mayfly(["hook", "sign", "--help"]);
    expect(s.code).toBe(0);
    expect(s.stdout).toMatch(/^Usage: mayfly hook sign/);
    expect(s.stdout).toContain("--key <file>");
    expect(s.stdout).toContain("application/jose");
  });

  it("signs an event with a PEM key; the JWKS it prints verifies it; the CA accepts it", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const keyFile = file("mdm.pem", privateKey.export({ type: "pkcs8", format: "pem" }) as string);
    const jwksOut = await mayfly(["hook", "jwks", "--key", keyFile, "--kid", "mdm-1"]);
    expect(jwksOut.code, jwksOut.stderr).toBe(0);
    const set = JSON.parse(jwksOut.stdout) as { keys: Record<string, unknown>[] };
    expect(set.keys).toHaveLength(1);
    expect(set.keys[0]).toMatchObject({ kty: "EC", crv: "P-256", kid: "mdm-1", alg: "ES256", use: "sig" });
    expect(set.keys[0]).not.toHaveProperty("d");

    const ca = await startMdmCa(`  jwksFile: "${file("jwks.json", jwksOut.stdout)}"`);
    try {
      const event = file(
        "event.json",
        JSON.stringify({ type: "device.enrolled", mdmId: "cli-1", serial: "C02CLI", compliant: true }),
      );
      const r = await mayfly(["hook", "sign", "--key", keyFile, "--kid", "mdm-1", "--event", event]);
      expect(r.code, r.stderr).toBe(0);
      const jws = r.stdout.trim();
      expect(decodeProtectedHeader(jws)).toMatchObject({ alg: "ES256", kid: "mdm-1" });
      const { payload } = await compactVerify(jws, createLocalJWKSet(set as never));
      const claims = JSON.parse(Buffer.from(payload).toString()) as Record<string, unknown>;
      expect(claims).toMatchObject({ type: "device.enrolled", mdmId: "cli-1" });
      expect(typeof claims.jti).toBe("string");
      expect(Math.abs((claims.iat as number) - Date.now() / 1000)).toBeLessThan(60);
      // The CA's clock is the wall clock moved only by tests: the fresh iat is accepted.
      expect(await expectAccepted(ca, jws)).toMatchObject({ event: "device.enrolled", created: true });
    } finally {
      await ca.close();
    }
  });

  it("signs with an Ed25519 JWK (its kid in the header), keeps a given jti; --json", async () => {
    const { privateKey } = generateKeyPairSync("ed25519");
    const jwk = { ...privateKey.export({ format: "jwk" }), kid: "ed-1" };
    const keyFile = file("mdm.jwk", JSON.stringify(jwk));
    const event = file(
      "c.json",
      JSON.stringify({ type: "device.compliance_changed", mdmId: "x", compliant: false, jti: "given" }),
    );
    const r = await mayfly(["hook", "sign", "--key", keyFile, "--event", event, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { ok: boolean; jws: string; claims: Record<string, unknown> };
    expect(out.ok).toBe(true);
    expect(decodeProtectedHeader(out.jws)).toMatchObject({ alg: "EdDSA", kid: "ed-1" });
    expect(out.claims).toMatchObject({ jti: "given", compliant: false });
  });

  it("refuses an event the CA would refuse, and a key it cannot sign with", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const keyFile = file("k.pem", privateKey.export({ type: "pkcs8", format: "pem" }) as string);
    const typo = file(
      "typo.json",
      JSON.stringify({ type: "device.compliance_changed", mdmId: "x", complaint: true }),
    );
    const bad = await mayfly(["hook", "sign", "--key", keyFile, "--event", typo, "--json"]);
    expect(bad.code).toBe(3);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, code: "mdm.event_invalid" });
    const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey;
    const weak = file("p384.pem", p384.export({ type: "pkcs8", format: "pem" }) as string);
    const ok = file("ok.json", JSON.stringify({ type: "device.unenrolled", mdmId: "x" }));
    const r = await mayfly(["hook", "sign", "--key", weak, "--event", ok]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("request.invalid");
  });
});

describe("mayfly device list | show | unenroll", () => {
  it("shows the inventory and unenrols a device: agents suspended, EK registration removed, audited as cli", async () => {
    const data = join(dir, "data");
    const env = { MAYFLY_DATA_DIR: data };
    expect((await mayfly(["device", "list", "--json"], env)).code).toBe(0); // creates the store
    const store = new SqliteStore({ path: join(data, "mayfly.db") });
    await store.migrate();
    await store.tx(async (tx) => {
      await tx.insertOwner(owner("o1"));
      await tx.insertDevice(device("d1", { assignedUser: "o1@example.test", postureAt: 1_750_000_000_000 }));
      await tx.insertDevice(device("d2", { managed: false, mdmId: null }));
      await tx.insertAgent(agent("a1", "o1", "d1"));
      await tx.insertAgent(agent("a2", "o1", "d1", { status: "retired", statusReason: "admin" }));
      await tx.upsertEkRegistration(ekRegistration("x", { ekPubHash: bytes("ek-d1"), source: "mdm:intune" }));
    });
    await store.close();

    const list = await mayfly(["device", "list", "--json"], env);
    expect(list.code, list.stderr).toBe(0);
    const devices = (JSON.parse(list.stdout) as { devices: Record<string, unknown>[] }).devices;
    expect(devices.map((d) => d.id)).toEqual(["d1", "d2"]);
    expect(devices[0]).toMatchObject({
      status: "active",
      managed: true,
      mdmId: "mdm-d1",
      assignedUser: "o1@example.test",
      ekPubHash: bytes("ek-d1").toString("hex"),
      postureAt: new Date(1_750_000_000_000).toISOString(),
    });
    const text = await mayfly(["device", "list"], env);
    expect(text.stdout).toMatch(/^d1 {2}active {2}managed,non-compliant {2}mdm=mdm-d1/m);

    const show = await mayfly(["device", "show", "d1", "--json"], env);
    expect(JSON.parse(show.stdout)).toMatchObject({
      device: { id: "d1" },
      ekRegistration: { source: "mdm:intune" },
      agents: [
        { id: "a1", status: "active" },
        { id: "a2", status: "retired" },
      ],
    });

    const un = await mayfly(["device", "unenroll", "d1", "--note", "stolen", "--json"], env);
    expect(un.code, un.stderr).toBe(0);
    expect(JSON.parse(un.stdout)).toMatchObject({
      ok: true,
      status: "unenrolled",
      suspendedAgents: ["a1"],
      ekRegistrationRemoved: "mdm:intune",
    });
    const after = JSON.parse((await mayfly(["device", "show", "d1", "--json"], env)).stdout);
    expect(after).toMatchObject({
      device: { status: "unenrolled" },
      ekRegistration: null,
      agents: [
        { id: "a1", status: "suspended", statusReason: "device.unenrolled" },
        { id: "a2", status: "retired" },
      ],
    });
    const unenrolled = JSON.parse(
      (await mayfly(["device", "list", "--status", "unenrolled", "--json"], env)).stdout,
    );
    expect(unenrolled.devices.map((d: { id: string }) => d.id)).toEqual(["d1"]);
    expect((await mayfly(["device", "show", "nope"], env)).code).toBe(3);

    const check = new SqliteStore({ path: join(data, "mayfly.db") });
    const events = await check.tx((tx) => tx.listAuditEvents(1, 1000));
    await check.close();
    expect(events.map((e) => [e.type, e.actor])).toEqual([
      ["device.ek.unregister", "cli"],
      ["agent.suspend", "cli"],
      ["device.unenrol", "cli"],
    ]);
    expect(events.at(-1)?.data).toMatchObject({ note: "stolen", agents: ["a1"] });
  });
});
