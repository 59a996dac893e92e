import { createHash, generateKeyPairSync, webcrypto } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import { type BundleTrust, trustFromPem, verifyBundleUpdate } from "../../src/agent/bundle-verify.js";
import type { RotationDeps } from "../../src/authority/rotation-store.js";
import { loadConfig, type ResolvedConfig } from "../../src/config/index.js";
import { EvidenceRegistry } from "../../src/evidence/registry.js";
import { tpmFormats } from "../../src/evidence/tpm-formats.js";
import { ManualClock, systemRandom } from "../../src/runtime/clock.js";
import { startServer } from "../../src/server/start.js";
import type { Store } from "../../src/store/store.js";
import type { Agent, Binding, Device, Owner } from "../../src/store/types.js";
import { https } from "../helpers/https.js";
import { openssl, writeTemp } from "../helpers/openssl.js";
import type { TestAgent, TestCa } from "../helpers/test-ca.js";
import { testSignedFormat } from "../helpers/test-evidence.js";

// A Mayfly server for rotation tests: like startTestCa (which it re-uses for seeding and
// issuing), but its ManualClock starts where the test says, its config is the test's, and
// the client trusts what the test last accepted through verifyBundleUpdate (a root rotation
// takes the CA's own TLS chain to the new root).

export interface RotationCa extends TestCa {
  rc: ResolvedConfig;
  deps(actor?: string, faults?: RotationDeps["faults"]): RotationDeps;
  /** GET /v1/bundle, verified against the held trust and adopted. */
  updateTrust(): Promise<{ trust: BundleTrust; pem: string; json: BundleJson }>;
  trust(): BundleTrust;
  trustPem(): string;
}

export interface BundleJson {
  sequence: number;
  roots: { id: string; slot: string; pem: string; notBefore: string; notAfter: string }[];
  intermediates: { id: string; slot: string; pem: string; notBefore: string; notAfter: string }[];
  crossSigned: { subjectId: string; issuerId: string; pem: string }[];
  signatures: { protected: string; signature: string }[];
}

export async function startRotationCa(configYaml: string, startAt = Date.now()): Promise<RotationCa> {
  const dir = await mkdtemp(join(tmpdir(), "mayfly-rot-"));
  const cfgPath = join(dir, "mayfly.yaml");
  await writeFile(cfgPath, configYaml);
  const rc = await loadConfig(cfgPath, { MAYFLY_DATA_DIR: join(dir, "data"), MAYFLY_LISTEN: "127.0.0.1:0" });
  const clock = new ManualClock(startAt);
  const evidence = new EvidenceRegistry([testSignedFormat, ...tpmFormats()]);
  const running = await startServer(rc, {
    clock,
    random: systemRandom,
    log: pino({ level: "silent" }),
    evidence,
  });
  const first = await https(`${running.url}/v1/bundle`, { insecure: true });
  const firstJson = first.json as BundleJson;
  const rootPem = firstJson.roots.map((r) => r.pem).join("");
  let trust = trustFromPem(rootPem, rc.config.ca.trustDomain);
  let pem = rootPem;
  const ca: RotationCa = {
    dir,
    url: running.url,
    clock,
    running,
    rootPem,
    bundlePem: rootPem,
    rc,
    call(path, body, opts = {}) {
      return https(`${running.url}${path}`, { ca: pem, body, ...opts });
    },
    seedAgent: (opts = {}) => seedAgent(running.store, clock, opts),
    deps(actor = "cli", faults) {
      return {
        store: running.store,
        keys: running.keys,
        clock,
        random: systemRandom,
        config: rc.config,
        actor,
        ...(faults ? { faults } : {}),
      };
    },
    async updateTrust() {
      const r = await https(`${running.url}/v1/bundle`, { ca: pem });
      const v = await verifyBundleUpdate(trust, r.json, { now: clock.now() });
      trust = v.trust;
      pem = v.pem;
      return { trust, pem, json: r.json as BundleJson };
    },
    trust: () => trust,
    trustPem: () => pem,
    async close() {
      await running.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
  return ca;
}

let counter = 0;

/** As startTestCa's seedAgent: an active owner, a device with a software "device" key, an agent and its binding. */
async function seedAgent(
  store: Store,
  clock: ManualClock,
  opts: Parameters<TestCa["seedAgent"]>[0] = {},
): Promise<TestAgent> {
  const n = ++counter;
  const now = clock.now();
  const deviceKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = deviceKey.publicKey.export({ type: "spki", format: "der" });
  const owner: Owner = {
    id: `rot-owner-${n}`,
    issuer: "https://idp.test",
    subject: `rot-sub-${n}`,
    email: `rot${n}@example.test`,
    displayName: `Owner ${n}`,
    status: "active",
    manager: null,
    department: null,
    createdAt: now,
    updatedAt: now,
    ...opts.owner,
  };
  const device: Device = {
    id: `rot-device-${n}`,
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
    assignedOwnerId: owner.id,
    createdAt: now,
    updatedAt: now,
    ...opts.device,
  };
  const agentId = `rot-agent-${n}`;
  const agent: Agent = {
    id: agentId,
    name: `agent ${n}`,
    ownerId: owner.id,
    deviceId: device.id,
    spiffeId: `spiffe://mayfly.internal/agent/${agentId}`,
    purpose: "rotation tests",
    profile: "default",
    status: "active",
    expiresAt: now + 30 * 86_400_000,
    lastIssuedAt: null,
    createdAt: now,
    updatedAt: now,
    ...opts.agent,
  };
  const binding: Binding = {
    agentId,
    ownerId: owner.id,
    tokenIssuer: owner.issuer,
    tokenSubject: owner.subject,
    authTime: now,
    affirmedAt: now,
    expiresAt: now + 30 * 86_400_000,
    ...opts.binding,
  };
  await store.tx(async (tx) => {
    await tx.insertOwner(owner);
    await tx.insertDevice(device);
    await tx.insertAgent(agent);
    await tx.upsertBinding(binding);
  });
  return { agentId, ownerId: owner.id, deviceId: device.id, deviceKey: deviceKey.privateKey };
}

/** `openssl verify -x509_strict` of `leafPem` against the bundle, at the CA's (manual) time. */
export async function opensslVerify(dir: string, bundle: BundleJson, leafPem: string, at: number) {
  const roots = await writeTemp(
    dir,
    `roots-${Math.random().toString(36).slice(2)}.pem`,
    bundle.roots.map((r) => r.pem).join(""),
  );
  const inter = await writeTemp(
    dir,
    `inter-${Math.random().toString(36).slice(2)}.pem`,
    bundle.intermediates.map((r) => r.pem).join(""),
  );
  const leaf = await writeTemp(dir, `leaf-${Math.random().toString(36).slice(2)}.pem`, leafPem);
  return openssl([
    "verify",
    "-x509_strict",
    "-attime",
    String(Math.floor(at / 1000)),
    "-CAfile",
    roots,
    "-untrusted",
    inter,
    leaf,
  ]);
}

export async function pkcs8Pem(key: webcrypto.CryptoKey): Promise<string> {
  const der = Buffer.from(await webcrypto.subtle.exportKey("pkcs8", key));
  return `-----BEGIN PRIVATE KEY-----\n${der
    .toString("base64")
    .match(/.{1,64}/g)!
    .join("\n")}\n-----END PRIVATE KEY-----\n`;
}
