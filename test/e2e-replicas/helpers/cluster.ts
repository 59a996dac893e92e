import { type ChildProcess, spawn } from "node:child_process";
import { createHash, generateKeyPairSync, randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { openStore } from "../../../src/store/open.js";
import type { Store } from "../../../src/store/store.js";
import type { Agent, Binding, Device, Owner } from "../../../src/store/types.js";
import { https } from "../../helpers/https.js";
import { type AgentKey, attest, newAgentKey, type TestAgent } from "../../helpers/test-ca.js";

// Several CA replicas as separate processes (replica-server.ts) sharing one store URL,
// one keys directory and one passphrase file, i.e. one CA; and a client for them.

const ENTRY = fileURLToPath(new URL("./replica-server.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

// The crash tests start a replica process 20+ times: under tsx each start spends ~0.6 s
// transpiling and loading modules before startServer runs. Bundling the entry once per
// test file with esbuild (already installed, as tsx's and vite's compiler) halves that.
// The bundle sits under node_modules/ so that native modules resolve from there.
let bundled: Promise<string[]> | null = null;
function entryArgs(): Promise<string[]> {
  bundled ??= (async () => {
    try {
      const { build } = await import("esbuild");
      const out = join(ROOT, "node_modules", ".cache", `mayfly-replica-${process.pid}.mjs`);
      await build({
        entryPoints: [ENTRY],
        bundle: true,
        platform: "node",
        format: "esm",
        target: "node20",
        outfile: out,
        external: ["better-sqlite3", "pkcs11js", "pg-native"],
        // CommonJS dependencies inside an ES module bundle call require().
        banner: {
          js: "import { createRequire as __mayflyRequire } from 'node:module'; const require = __mayflyRequire(import.meta.url);",
        },
        logLevel: "error",
      });
      process.once("exit", () => rmSync(out, { force: true }));
      return [out];
    } catch {
      return ["--import", "tsx", ENTRY];
    }
  })();
  return bundled;
}

export interface Replica {
  name: string;
  url: string;
  proc: ChildProcess;
  exited: Promise<void>;
  alive(): boolean;
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

/** The owners.oidc.issuer of the cluster: SCIM-provisioned owners belong to it. */
export const IDP = "https://idp.test";

export interface Cluster {
  dir: string;
  /** Bearer token of the SCIM provisioning client. */
  scimToken: string;
  storeUrl: string;
  /** The test's own connection to the shared store (one more writer, like a replica). */
  store: Store;
  start(name: string): Promise<Replica>;
  /** Trusts the CA's root; empty until a replica has served the bundle. */
  rootPem(): string;
  seedAgent(n: number, existing?: Owner): Promise<TestAgent>;
  close(): Promise<void>;
}

export async function makeCluster(storeUrl: (dir: string) => string): Promise<Cluster> {
  const dir = await mkdtemp(join(tmpdir(), "mayfly-replicas-"));
  const url = storeUrl(dir);
  await mkdir(join(dir, "ek-trust"));
  await writeFile(join(dir, "passphrase"), `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600 });
  const scimToken = randomBytes(32).toString("base64url");
  await writeFile(join(dir, "scim-token"), `${scimToken}\n`, { mode: 0o600 });
  const configPath = join(dir, "mayfly.yaml");
  await writeFile(
    configPath,
    [
      "store:",
      `  url: ${JSON.stringify(url)}`,
      "keys:",
      `  dir: ${JSON.stringify(join(dir, "keys"))}`,
      `  passphrase: { file: ${JSON.stringify(join(dir, "passphrase"))} }`,
      // No TPM vendor roots: these replicas never see a TPM, and parsing the shipped
      // roots is half of a start (the crash tests start 20+ processes).
      "devices:",
      `  ekTrustDir: ${JSON.stringify(join(dir, "ek-trust"))}`,
      // SCIM provisioning (the leaver test); the IdP is never contacted by these tests.
      "owners:",
      "  oidc:",
      `    issuer: ${JSON.stringify(IDP)}`,
      "    clientIds: [mayfly]",
      "  scim:",
      `    token: { file: ${JSON.stringify(join(dir, "scim-token"))} }`,
      "profiles:",
      "  default:",
      "    formats: [test-signed]",
      "    keyResidency: [bound]",
      "",
    ].join("\n"),
  );
  const replicas = new Set<Replica>();
  let root = "";
  let store: Store | null = null;

  async function start(name: string): Promise<Replica> {
    const proc = spawn(process.execPath, [...(await entryArgs()), configPath], {
      env: { ...process.env, MAYFLY_DATA_DIR: join(dir, `data-${name}`), MAYFLY_LISTEN: "127.0.0.1:0" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    proc.stderr?.setEncoding("utf8").on("data", (s: string) => {
      stderr = (stderr + s).slice(-4000);
    });
    const exited = new Promise<void>((resolve) => proc.once("exit", () => resolve()));
    const line = await new Promise<string>((resolve, reject) => {
      let out = "";
      proc.stdout?.setEncoding("utf8").on("data", (s: string) => {
        out += s;
        const nl = out.indexOf("\n");
        if (nl >= 0) resolve(out.slice(0, nl));
      });
      proc.once("exit", (code, signal) =>
        reject(new Error(`replica ${name} exited (${code ?? signal}) before serving:\n${stderr}`)),
      );
    });
    const { url: replicaUrl } = JSON.parse(line) as { url: string };
    let dead = false;
    void exited.then(() => {
      dead = true;
      replicas.delete(r);
    });
    const r: Replica = {
      name,
      url: replicaUrl,
      proc,
      exited,
      alive: () => !dead,
      async kill9() {
        proc.kill("SIGKILL");
        await exited;
      },
      async stop() {
        if (dead) return;
        proc.kill("SIGTERM");
        await exited;
      },
    };
    replicas.add(r);
    if (!root) {
      const b = await https(`${replicaUrl}/v1/bundle`, { insecure: true });
      root = (b.json as { roots: { pem: string }[] }).roots.map((x) => x.pem).join("");
    }
    return r;
  }

  return {
    dir,
    scimToken,
    storeUrl: url,
    get store() {
      if (!store) throw new Error("the cluster store opens after the first replica has migrated it");
      return store;
    },
    async start(name) {
      const r = await start(name);
      store ??= await openStore(url);
      return r;
    },
    rootPem: () => root,
    async seedAgent(n, existing) {
      return seedAgent(this.store, n, existing);
    },
    async close() {
      await Promise.all([...replicas].map((r) => r.kill9()));
      await store?.close();
      await rm(dir, { recursive: true, force: true });
    },
  } as Cluster;
}

/**
 * An owner (or `existing`), a device whose software key stands in for the AK, an agent
 * and its binding.
 */
export async function seedAgent(store: Store, n: number, existing?: Owner): Promise<TestAgent> {
  const now = Date.now();
  const deviceKey = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const spki = deviceKey.publicKey.export({ type: "spki", format: "der" });
  const owner: Owner = existing ?? {
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
  };
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
  };
  const agentId = `agent-${n}`;
  const agent: Agent = {
    id: agentId,
    name: `agent ${n}`,
    ownerId: owner.id,
    deviceId: device.id,
    spiffeId: `spiffe://mayfly.internal/agent/${agentId}`,
    purpose: "replica tests",
    profile: "default",
    status: "active",
    expiresAt: now + 7 * 86_400_000,
    lastIssuedAt: null,
    createdAt: now,
    updatedAt: now,
  };
  const binding: Binding = {
    agentId,
    ownerId: owner.id,
    tokenIssuer: owner.issuer,
    tokenSubject: owner.subject,
    authTime: now,
    affirmedAt: now,
    expiresAt: now + 7 * 86_400_000,
  };
  await store.tx(async (tx) => {
    if (!existing) await tx.insertOwner(owner);
    await tx.insertDevice(device);
    await tx.insertAgent(agent);
    await tx.upsertBinding(binding);
  });
  return { agentId, ownerId: owner.id, deviceId: device.id, deviceKey: deviceKey.privateKey };
}

/** POST /v1/agents/{id}/challenges at `url`; the nonce. */
export async function challengeAt(url: string, ca: string, agent: TestAgent): Promise<Buffer> {
  const r = await https(`${url}/v1/agents/${agent.agentId}/challenges`, { ca, body: {} });
  if (r.status !== 201) throw new Error(`challenge at ${url}: ${r.status} ${r.text}`);
  return Buffer.from((r.json as { nonce: string }).nonce, "base64url");
}

/** POST /v1/agents/{id}/certificates at `url` for `nonce`, with a test-signed attestation. */
export async function redeemAt(url: string, ca: string, agent: TestAgent, nonce: Buffer, key?: AgentKey) {
  const k = key ?? (await newAgentKey());
  return https(`${url}/v1/agents/${agent.agentId}/certificates`, {
    ca,
    body: {
      csr: k.csrDer.toString("base64url"),
      nonce: nonce.toString("base64url"),
      attestation: attest(agent.deviceKey, nonce, k.spki),
    },
  });
}
