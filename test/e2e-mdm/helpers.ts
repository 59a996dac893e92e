import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { CompactSign, exportJWK, generateKeyPair, type JWK } from "jose";
import { expect } from "vitest";
import type { AuditEvent } from "../../src/store/types.js";
import type { HttpResult } from "../helpers/https.js";
import { startTestCa, type TestCa } from "../helpers/test-ca.js";
import { loopbackTls } from "../owners/helpers/tls.js";

// The device-management side of the MDM tests: signing keys of each allowed algorithm, a
// JWKS served over real loopback TLS from a throwaway CA (trusted through mdm.caFile, as
// an MDM behind a private CA would be) or written to a file, and a CA configured for it.

export type MdmAlg = "ES256" | "RS256" | "EdDSA";

export interface MdmKey {
  alg: MdmAlg;
  kid: string;
  privateKey: Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
  publicJwk: JWK;
}

export async function mdmKey(alg: MdmAlg, kid = `${alg.toLowerCase()}-${randomBytes(4).toString("hex")}`) {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: "sig" };
  return { alg, kid, privateKey, publicJwk } satisfies MdmKey;
}

export function jwks(...keys: MdmKey[]): { keys: JWK[] } {
  return { keys: keys.map((k) => k.publicJwk) };
}

/** A JWKS on loopback HTTPS; `set` replaces what it serves; `fetches` counts GETs. */
export interface JwksServer {
  url: string;
  caPem: string;
  fetches: number;
  set(doc: unknown): void;
  close(): Promise<void>;
}

export async function startJwksServer(initial: unknown): Promise<JwksServer> {
  const tls = await loopbackTls();
  let doc = initial;
  const state = { fetches: 0 };
  const server: Server = createServer({ key: tls.keyPem, cert: tls.certPem }, (req, res) => {
    if (req.url !== "/.well-known/jwks.json") {
      res.statusCode = 404;
      res.end();
      return;
    }
    state.fetches++;
    res.setHeader("content-type", "application/json");
    res.end(JSON.stringify(doc));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `https://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jwks.json`;
  return {
    url,
    caPem: tls.caPem,
    get fetches() {
      return state.fetches;
    },
    set(d) {
      doc = d;
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A compact JWS of `claims` by `key`, jti and iat (the CA's clock) filled in unless given. */
export async function signed(
  ca: TestCa,
  key: MdmKey,
  claims: Record<string, unknown>,
  header: Record<string, unknown> = {},
): Promise<string> {
  const full = {
    jti: randomBytes(12).toString("base64url"),
    iat: Math.floor(ca.clock.now() / 1000),
    ...claims,
  };
  return new CompactSign(Buffer.from(JSON.stringify(full)))
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT", ...header })
    .sign(key.privateKey);
}

export function post(ca: TestCa, body: string, contentType = "application/jose"): Promise<HttpResult> {
  return ca.call("/v1/hooks/mdm", undefined, { rawBody: body, contentType });
}

export const PROFILES = `
profiles:
  default:
    formats: [test-signed]
    keyResidency: [bound]
  managed:
    formats: [test-signed]
    keyResidency: [bound]
    requireManaged: true
    requireCompliant: true
    requireAssignedOwner: true
    maxPostureAge: 1h
`;

/** A CA whose mdm section is `mdmYaml` (indented under mdm:), with the test profiles. */
export async function startMdmCa(mdmYaml: string, extra = ""): Promise<TestCa> {
  return startTestCa(`${PROFILES}
mdm:
  name: testmdm
${mdmYaml}
${extra}`);
}

export async function tempDir(): Promise<{
  dir: string;
  file(name: string, text: string): Promise<string>;
  close(): Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), "mayfly-mdm-"));
  return {
    dir,
    async file(name, text) {
      const p = join(dir, name);
      await writeFile(p, text);
      return p;
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Everything an event could change: devices, agents, EK registrations, jtis, certificates. */
export async function state(ca: TestCa) {
  const db = new Database(join(ca.dir, "data", "mayfly.db"), { readonly: true });
  try {
    const q = (sql: string) => db.prepare(sql).all();
    return JSON.stringify({
      devices: q("SELECT * FROM devices ORDER BY id"),
      agents: q("SELECT id, status, status_reason, updated_at FROM agents ORDER BY id"),
      ek: q("SELECT * FROM ek_registrations ORDER BY ek_pub_hash"),
      jtis: q("SELECT source, jti FROM hook_jtis ORDER BY source, jti"),
      certificates: q("SELECT COUNT(*) AS n FROM certificates"),
    });
  } finally {
    db.close();
  }
}

export async function auditSince(ca: TestCa, seq: number): Promise<AuditEvent[]> {
  return ca.running.store.tx((tx) => tx.listAuditEvents(seq + 1, 1e6));
}
export async function auditHead(ca: TestCa): Promise<number> {
  return ca.running.store.tx(async (tx) => (await tx.auditHead())?.seq ?? 0);
}

/**
 * Sends `body` and expects a refusal: problem+json with `code` (and `status`), exactly one
 * new audit event (a deny of type mdm.event with that code) and nothing else changed.
 */
export async function expectRefused(
  ca: TestCa,
  code: string,
  send: () => Promise<HttpResult>,
  status?: number,
): Promise<{ res: HttpResult; event: AuditEvent }> {
  const before = await state(ca);
  const mark = await auditHead(ca);
  const res = await send();
  expect(res.headers["content-type"], res.text).toMatch(/^application\/problem\+json/);
  expect((res.json as { code: string }).code, res.text).toBe(code);
  if (status !== undefined) expect(res.status).toBe(status);
  const events = await auditSince(ca, mark);
  expect(events.map((e) => [e.type, e.decision, e.code])).toEqual([["mdm.event", "deny", code]]);
  expect(await state(ca)).toEqual(before);
  return { res, event: events[0]! };
}

/** Sends `body` and expects it applied (or accepted as a duplicate when `applied` is false). */
export async function expectAccepted(ca: TestCa, body: string, applied = true) {
  const res = await post(ca, body);
  expect(res.status, res.text).toBe(200);
  const out = res.json as {
    applied: boolean;
    created: boolean;
    deviceId: string;
    event: string;
    suspendedAgents: string[];
  };
  expect(out.applied, res.text).toBe(applied);
  return out;
}
