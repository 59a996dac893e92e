import { createHash, generateKeyPairSync, type KeyObject, sign, webcrypto } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Logger, pino } from "pino";
import { loadConfig } from "../../src/config/index.js";
import { EvidenceRegistry } from "../../src/evidence/registry.js";
import { tpmFormats } from "../../src/evidence/tpm-formats.js";
import { ManualClock, systemRandom } from "../../src/runtime/clock.js";
import type { RequestListenerOptions } from "../../src/server/app.js";
import { type RunningServer, startServer } from "../../src/server/start.js";
import type { Agent, Binding, Device, Owner } from "../../src/store/types.js";
import * as x509 from "../../src/x509/peculiar.js";
import { https } from "./https.js";
import { testSignedFormat } from "./test-evidence.js";

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export interface TestAgent {
  agentId: string;
  ownerId: string;
  deviceId: string;
  deviceKey: KeyObject; // the software "device" key of the test-only format
}

export interface TestCa {
  dir: string;
  url: string;
  clock: ManualClock;
  running: RunningServer;
  rootPem: string;
  bundlePem: string;
  seedAgent(
    opts?: Partial<{
      agent: Partial<Agent>;
      owner: Partial<Owner>;
      device: Partial<Device>;
      binding: Partial<Binding>;
    }>,
  ): Promise<TestAgent>;
  call(
    path: string,
    body?: unknown,
    opts?: { rawBody?: string; contentType?: string; method?: string },
  ): ReturnType<typeof https>;
  close(): Promise<void>;
}

let counter = 0;

/** A real Mayfly server (HTTPS, SQLite, file keys) in a temp dir, with the test-only evidence format. */
export const TEST_CONFIG = `
profiles:
  default:
    formats: [test-signed]
    keyResidency: [bound]
`;

export async function startTestCa(
  configYaml: string = TEST_CONFIG,
  opts: { listener?: RequestListenerOptions; log?: Logger } = {},
): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), "mayfly-test-"));
  let cfgPath: string | null = null;
  if (configYaml) {
    cfgPath = join(dir, "mayfly.yaml");
    const { writeFile } = await import("node:fs/promises");
    await writeFile(cfgPath, configYaml);
  }
  const rc = await loadConfig(cfgPath, { MAYFLY_DATA_DIR: join(dir, "data"), MAYFLY_LISTEN: "127.0.0.1:0" });
  // Real time (TLS peers check validity against the wall clock), moved only by tests.
  const clock = new ManualClock(Date.now());
  const log = opts.log ?? pino({ level: "silent" });
  // As productionFormats: the qualifiedSigner must be the QN recorded at activation.
  const evidence = new EvidenceRegistry([
    testSignedFormat,
    ...tpmFormats({ qualifiedSigner: (device) => device.akQualifiedName ?? null }),
  ]);
  const running = await startServer(rc, {
    clock,
    random: systemRandom,
    log,
    evidence,
    listener: opts.listener,
  });
  const bundle = await https(`${running.url}/v1/bundle`, { insecure: true });
  const b = bundle.json as { roots: { pem: string }[]; intermediates: { pem: string }[] };
  const rootPem = b.roots.map((r) => r.pem).join("");
  const bundlePem = rootPem + b.intermediates.map((r) => r.pem).join("");

  return {
    dir,
    url: running.url,
    clock,
    running,
    rootPem,
    bundlePem,
    async seedAgent(opts = {}) {
      const n = ++counter;
      const now = clock.now();
      const deviceKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
      const owner: Owner = {
        id: `owner-${n}`,
        issuer: "https://idp.test",
        subject: `sub-${n}`,
        email: `owner${n}@example.test`,
        displayName: `Owner ${n}`,
        status: "active",
        manager: null,
        department: null,
        createdAt: now,
        updatedAt: now,
        ...opts.owner,
      };
      const spki = deviceKey.publicKey.export({ type: "spki", format: "der" });
      const device: Device = {
        id: `device-${n}`,
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
      const agentId = `agent-${n}`;
      const agent: Agent = {
        id: agentId,
        name: `agent ${n}`,
        ownerId: owner.id,
        deviceId: device.id,
        spiffeId: `spiffe://mayfly.internal/agent/${agentId}`,
        purpose: "tests",
        profile: "default",
        status: "active",
        expiresAt: now + 7 * 86_400_000,
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
        expiresAt: now + 7 * 86_400_000,
        ...opts.binding,
      };
      await running.store.tx(async (tx) => {
        await tx.insertOwner(owner);
        await tx.insertDevice(device);
        await tx.insertAgent(agent);
        await tx.upsertBinding(binding);
      });
      return { agentId, ownerId: owner.id, deviceId: device.id, deviceKey: deviceKey.privateKey };
    },
    call(path, body, opts = {}) {
      return https(`${running.url}${path}`, { ca: rootPem, body, ...opts });
    },
    async close() {
      await running.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface AgentKey {
  privateKey: webcrypto.CryptoKey;
  publicKey: webcrypto.CryptoKey;
  spki: Buffer;
  csrDer: Buffer;
}

type CryptoKeyPairLike = Parameters<typeof x509.Pkcs10CertificateRequestGenerator.create>[0]["keys"];

/** A fresh P-256 agent key and a CSR for it (the CA ignores the CSR subject). */
export async function newAgentKey(): Promise<AgentKey> {
  const alg = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
  const keys = (await webcrypto.subtle.generateKey(alg, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    keys: keys as unknown as CryptoKeyPairLike,
    signingAlgorithm: alg,
    name: "CN=agent",
  });
  const spki = Buffer.from(await webcrypto.subtle.exportKey("spki", keys.publicKey));
  return { privateKey: keys.privateKey, publicKey: keys.publicKey, spki, csrDer: Buffer.from(csr.rawData) };
}

/** Builds the test-signed attestation for a nonce and key. */
export function attest(deviceKey: KeyObject, nonce: Buffer, spki: Buffer) {
  const extraData = createHash("sha256").update(nonce).update(spki).digest();
  const signature = sign("sha256", extraData, deviceKey);
  return {
    format: "test-signed",
    extraData: extraData.toString("base64url"),
    signature: signature.toString("base64url"),
  };
}

/** Challenge then issuance, as an agent does it. */
export async function issueVia(ca: TestCa, agent: TestAgent, key?: AgentKey) {
  const k = key ?? (await newAgentKey());
  const ch = await ca.call(`/v1/agents/${agent.agentId}/challenges`, {});
  if (ch.status !== 201) throw new Error(`challenge failed: ${ch.status} ${ch.text}`);
  const nonce = Buffer.from((ch.json as { nonce: string }).nonce, "base64url");
  const res = await ca.call(`/v1/agents/${agent.agentId}/certificates`, {
    csr: k.csrDer.toString("base64url"),
    nonce: nonce.toString("base64url"),
    attestation: attest(agent.deviceKey, nonce, k.spki),
  });
  return { res, key: k, nonce };
}
