import { createHash, generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expect } from "vitest";
import type { AuditEvent, Device } from "../../src/store/types.js";
import { type HttpResult, https } from "../helpers/https.js";
import { startTestCa, type TestAgent, type TestCa } from "../helpers/test-ca.js";
import { MAYFLY_CLIENT, startIdp, type TestIdp } from "../owners/helpers/idp.js";

// A real Mayfly (HTTPS, SQLite) whose owners log in at a real OpenID Provider over TLS
// and are provisioned through SCIM with a bearer token read from a file.

export interface Counts {
  owners: number;
  agents: number;
  scimUsers: number;
  certificates: number;
  audit: number;
  state: number;
}

export interface OwnersCa {
  ca: TestCa;
  idp: TestIdp;
  scimToken: string;
  /** A fresh login's ID token for `account` (created at the IdP if new). */
  token(account: string, opts?: { authAgeSeconds?: number; clientId?: string }): Promise<string>;
  api(method: string, path: string, token: string | null, body?: unknown): Promise<HttpResult>;
  scim(method: string, path: string, body?: unknown, token?: string): Promise<HttpResult>;
  /** A device with an activated key (the test-only format's software key), optionally assigned. */
  device(over?: Partial<Device>): Promise<{ deviceId: string; deviceKey: KeyObject }>;
  audit(): Promise<AuditEvent[]>;
  counts(): Promise<Counts>;
  close(): Promise<void>;
}

const PROFILES = `
profiles:
  default:
    formats: [test-signed]
    keyResidency: [bound]
  assigned:
    formats: [test-signed]
    keyResidency: [bound]
    requireAssignedDevice: true
  short:
    formats: [test-signed]
    keyResidency: [bound]
    agentMaxLifetime: 1h
`;

export async function startOwnersCa(extra = ""): Promise<OwnersCa> {
  const idp = await startIdp();
  const scimToken = randomBytes(32).toString("base64url");
  const dir = join(
    await import("node:os").then((o) => o.tmpdir()),
    `mayfly-idp-${randomBytes(6).toString("hex")}`,
  );
  await import("node:fs/promises").then((f) => f.mkdir(dir, { recursive: true }));
  const caFile = join(dir, "idp-ca.pem");
  const tokenFile = join(dir, "scim-token");
  await writeFile(caFile, idp.caPem);
  await writeFile(tokenFile, `${scimToken}\n`, { mode: 0o600 });
  const ca = await startTestCa(`${PROFILES}
owners:
  adminGroup: mayfly-admins
  oidc:
    issuer: "${idp.issuer}"
    clientIds: [${MAYFLY_CLIENT}]
    caFile: "${caFile}"
  scim:
    token: { file: "${tokenFile}" }
${extra}`);
  const api = (method: string, path: string, token: string | null, body?: unknown) =>
    https(`${ca.url}${path}`, {
      method,
      ca: ca.rootPem,
      ...(body === undefined ? {} : { body }),
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
  return {
    ca,
    idp,
    scimToken,
    async token(account, opts = {}) {
      if (!idp.accounts.has(account)) {
        idp.accounts.set(account, { email: `${account}@example.test`, name: account, groups: ["eng"] });
      }
      return (await idp.login({ account, ...opts })).idToken;
    },
    api,
    scim(method, path, body, token = scimToken) {
      return https(`${ca.url}/scim/v2${path}`, {
        method,
        ca: ca.rootPem,
        ...(body === undefined
          ? {}
          : { rawBody: JSON.stringify(body), contentType: "application/scim+json" }),
        headers: { authorization: `Bearer ${token}` },
      });
    },
    async device(over = {}) {
      const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const spki = key.publicKey.export({ type: "spki", format: "der" });
      const now = ca.clock.now();
      const d: Device = {
        id: `dev-${randomBytes(6).toString("hex")}`,
        kind: "tpm",
        status: "active",
        ekPubHash: createHash("sha256").update(spki).digest(),
        ekCertIssuer: null,
        akName: null,
        akPublic: spki,
        serial: null,
        mdmId: null,
        managed: false,
        compliant: false,
        assignedOwnerId: null,
        createdAt: now,
        updatedAt: now,
        ...over,
      };
      await ca.running.store.tx((tx) => tx.insertDevice(d));
      return { deviceId: d.id, deviceKey: key.privateKey };
    },
    audit: () => ca.running.store.tx((tx) => tx.listAuditEvents(1, 1_000_000)),
    async counts() {
      const db = ca.running.store;
      return db.tx(async (tx) => {
        const owners = await tx.listOwners();
        const agents = await tx.listAgents({ limit: 1_000_000 });
        return {
          owners: owners.length,
          agents: agents.length,
          scimUsers: await tx.countScimUsers(),
          certificates: await tx.countCertificates(),
          audit: (await tx.listAuditEvents(1, 1_000_000)).length,
          state: JSON.stringify([owners, agents]).length,
        };
      });
    },
    async close() {
      await ca.close();
      await idp.close();
      await import("node:fs/promises").then((f) => f.rm(dir, { recursive: true, force: true }));
    },
  };
}

/**
 * Asserts a deny through the owner API: problem+json with the code, exactly one new
 * audit event (a deny with that code) and no other state written.
 */
export async function expectOwnerDeny(
  o: OwnersCa,
  p: () => Promise<HttpResult>,
  code: string,
  status?: number,
) {
  const before = await o.counts();
  const res = await p();
  expect(res.headers["content-type"], res.text).toMatch(/^application\/problem\+json/);
  const body = res.json as { code: string; type: string };
  expect(body.code, res.text).toBe(code);
  expect(body.type).toBe(`urn:mayfly:problem:${code}`);
  if (status !== undefined) expect(res.status).toBe(status);
  const after = await o.counts();
  expect({ ...after, audit: after.audit - 1 }).toEqual(before);
  const last = (await o.audit()).at(-1)!;
  expect(last).toMatchObject({ decision: "deny", code });
  return { res, event: last };
}

export function asTestAgent(
  agentId: string,
  ownerId: string,
  dev: { deviceId: string; deviceKey: KeyObject },
): TestAgent {
  return { agentId, ownerId, deviceId: dev.deviceId, deviceKey: dev.deviceKey };
}

export const inDays = (ca: TestCa, d: number) => new Date(ca.clock.now() + d * 86_400_000).toISOString();
