// One load process of the bench (forked by run.ts; several run side by side so the client
// does not starve). It waits for a `run` message, drives its share of the concurrency for
// the given time, and answers with counts and latencies. Per Mayfly issuance it does what a
// real agent does per issuance: a challenge, a fresh TPM key (simulated), TPM2_Certify by
// the AK over SHA-256(nonce || SPKI), a CSR signed by the new key, the certificate request,
// through the agent library's CaClient. Per cfssl request: a fresh P-256 key and CSR,
// POST /api/v1/cfssl/sign. Only device enrolment (EK/AK, activation) happened beforehand.
import { createPrivateKey, type KeyObject, sign } from "node:crypto";
import { readFileSync } from "node:fs";
import { Agent, request } from "node:https";
import { createSecureContext } from "node:tls";
import { CaClient } from "../../src/agent/ca-client.js";
import { certificationRequestInfo } from "../../src/agent/csr.js";
import { bindingDigest } from "../../src/evidence/binding.js";
import { objectName } from "../../src/tpm/index.js";
import { unmarshalTpm2bPublic } from "../../src/tpm/public.js";
import { bitString, oid, sequence } from "../../src/x509/der.js";
import { certify, certifyAttestation, createKey, p256Key, type SimAk } from "./sim-tpm.js";

export interface DeviceLine {
  agentId: string;
  akPkcs8: string;
  akTpm2b: string;
  akQn: string;
}

export type RunMessage = {
  cmd: "run";
  target: "mayfly" | "cfssl";
  url: string;
  caPem: string;
  concurrency: number;
  durationMs: number;
  warmupMs: number;
};

export interface RunResult {
  /** Issuances that ended inside the measured window (after the warm-up, before its end). */
  completed: number;
  requests: number;
  errors: number;
  firstError: string | null;
  /** Latency of each issuance counted in `completed`, microseconds. */
  latencies: number[];
  elapsedMs: number;
  /** This load process's CPU (user + system) inside the measured window, microseconds. */
  cpuUs: number;
  /** Issuances that ended at any time in the run, warm-up and tail included. */
  all: number;
}

interface Agentish {
  agentId: string;
  ak: SimAk;
}

function loadDevices(path: string, slot: number, slots: number): Agentish[] {
  const lines = readFileSync(path, "utf8").split("\n").filter(Boolean);
  const out: Agentish[] = [];
  lines.forEach((l, i) => {
    if (i % slots !== slot) return;
    const d = JSON.parse(l) as DeviceLine;
    const tpm2b = Buffer.from(d.akTpm2b, "base64url");
    const pub = unmarshalTpm2bPublic(tpm2b);
    out.push({
      agentId: d.agentId,
      ak: {
        pub,
        privateKey: createPrivateKey({
          key: Buffer.from(d.akPkcs8, "base64url"),
          format: "der",
          type: "pkcs8",
        }),
        tpm2b,
        name: objectName(pub),
        qualifiedName: Buffer.from(d.akQn, "base64url"),
      },
    });
  });
  return out;
}

const REQUEST_TIMEOUT_MS = 15_000;

const ECDSA_SHA256 = sequence(oid("1.2.840.10045.4.3.2"));

/**
 * PKCS#10 for a P-256 key, signed by it: the agent library's layout (certificationRequestInfo,
 * ecdsa-with-SHA256 without parameters), without buildCsr's re-import of the SPKI to pick
 * the algorithm, which the load tool knows. The same for both servers.
 */
function csrFor(spki: Buffer, privateKey: KeyObject): Buffer {
  const tbs = certificationRequestInfo(spki);
  return sequence(tbs, ECDSA_SHA256, bitString(sign("sha256", tbs, privateKey)));
}

async function mayflyIssue(client: CaClient, a: Agentish): Promise<void> {
  const { nonce } = await client.challenge(a.agentId);
  const key = createKey();
  const evidence = certify(a.ak, key, bindingDigest(nonce, key.spki));
  const csr = csrFor(key.spki, key.privateKey);
  await client.requestCertificate(a.agentId, {
    csr,
    nonce,
    attestation: certifyAttestation(key, evidence),
  });
}

function toPem(der: Buffer, label: string): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

interface CfsslTarget {
  agent: Agent;
  hostname: string;
  port: number;
}

/** POST /api/v1/cfssl/sign the way CaClient makes a call (options, string body in one write). */
function cfsslSign(t: CfsslTarget, csrPem: string): Promise<void> {
  const payload = JSON.stringify({ certificate_request: csrPem });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        protocol: "https:",
        hostname: t.hostname,
        port: t.port,
        path: "/api/v1/cfssl/sign",
        method: "POST",
        agent: t.agent,
        headers: { "content-type": "application/json", "content-length": Buffer.byteLength(payload) },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("error", reject);
        res.on("end", () => {
          let body: { success?: boolean; result?: { certificate?: string }; errors?: unknown };
          try {
            body = JSON.parse((chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString("utf8"));
          } catch {
            reject(new Error(`cfssl: HTTP ${res.statusCode} without JSON`));
            return;
          }
          if (res.statusCode !== 200 || !body.success || !body.result?.certificate) {
            reject(new Error(`cfssl: HTTP ${res.statusCode} ${JSON.stringify(body.errors)}`));
          } else resolve();
        });
      },
    );
    // A request that hangs becomes an error, not a stuck run.
    req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error("cfssl: no answer in time")));
    req.on("error", reject);
    req.end(payload);
  });
}

async function cfsslIssue(t: CfsslTarget): Promise<void> {
  const { privateKey, spki } = p256Key();
  const csr = csrFor(spki, privateKey);
  await cfsslSign(t, toPem(csr, "CERTIFICATE REQUEST"));
}

// One CaClient and one keep-alive Agent per server, kept for the whole bench: the warm-up
// run before each measured run opens the connections the measured run then uses, for both
// servers alike. (Made anew per run, the measured run paid a TLS handshake per connection,
// ~1.5-3 ms of load-process CPU each, 64 of them at c=64: charged per issuance that was
// ~0.7 ms at Mayfly's rate and ~0.1 ms at cfssl's, and it took CPU from the server too.)
const mayflyClients = new Map<string, CaClient>();
const cfsslTargets = new Map<string, CfsslTarget>();

function mayflyClient(m: RunMessage): CaClient {
  let c = mayflyClients.get(m.url);
  if (!c) {
    c = new CaClient({ url: m.url, ca: m.caPem, timeoutMs: REQUEST_TIMEOUT_MS });
    mayflyClients.set(m.url, c);
  }
  return c;
}

function cfsslTarget(m: RunMessage): CfsslTarget {
  let t = cfsslTargets.get(m.url);
  if (!t) {
    // The same TLS settings CaClient gives its Agent: keep-alive, TLS >= 1.2, one context.
    const u = new URL(m.url);
    t = {
      agent: new Agent({
        keepAlive: true,
        secureContext: createSecureContext({ ca: m.caPem, minVersion: "TLSv1.2" }),
      }),
      hostname: u.hostname,
      port: Number(u.port),
    };
    cfsslTargets.set(m.url, t);
  }
  return t;
}

async function run(m: RunMessage, agents: Agentish[]): Promise<RunResult> {
  const client = m.target === "mayfly" ? mayflyClient(m) : null;
  const cfssl = m.target === "cfssl" ? cfsslTarget(m) : null;
  // Steady state: the warm-up flows straight into the measured window (no drained pipeline at
  // its start), an issuance counts if it ends inside the window, and the window's CPU is read
  // at its edges, so the in-flight tail finishing after it is neither counted nor charged.
  const start = performance.now();
  const measureFrom = start + m.warmupMs;
  const stopAt = measureFrom + m.durationMs;
  const r: RunResult = {
    completed: 0,
    requests: 0,
    errors: 0,
    firstError: null,
    latencies: [],
    elapsedMs: 0,
    cpuUs: 0,
    all: 0,
  };
  let cpu0: NodeJS.CpuUsage | null = null;
  let cpuWindow: NodeJS.CpuUsage | null = null;
  const t0Timer = setTimeout(() => {
    cpu0 = process.cpuUsage();
  }, m.warmupMs);
  const t1Timer = setTimeout(() => {
    cpuWindow = process.cpuUsage(cpu0 ?? undefined);
  }, m.warmupMs + m.durationMs);
  let next = 0;
  const loop = async () => {
    while (performance.now() < stopAt) {
      const t0 = performance.now();
      const a = agents[next++ % agents.length]!;
      try {
        if (client) await mayflyIssue(client, a);
        else await cfsslIssue(cfssl!);
        const t1 = performance.now();
        r.all++;
        if (t1 >= measureFrom && t1 <= stopAt) {
          r.completed++;
          r.requests += m.target === "mayfly" ? 2 : 1;
          r.latencies.push(Math.round((t1 - t0) * 1000));
        }
      } catch (e) {
        r.errors++;
        r.firstError ??= e instanceof Error ? `${e.message}` : String(e);
      }
    }
  };
  await Promise.all(Array.from({ length: m.concurrency }, loop));
  clearTimeout(t0Timer);
  clearTimeout(t1Timer);
  r.elapsedMs = m.durationMs;
  const cpu = cpuWindow ?? process.cpuUsage(cpu0 ?? undefined);
  r.cpuUs = cpu.user + cpu.system;
  return r;
}

const [devicesPath, slot, slots] = process.argv.slice(2);
const agents = loadDevices(devicesPath!, Number(slot), Number(slots));
process.on("message", (m: RunMessage | { cmd: "exit" }) => {
  if (m.cmd === "exit") {
    for (const c of mayflyClients.values()) c.close();
    for (const t of cfsslTargets.values()) t.agent.destroy();
    process.exit(0);
  }
  run(m, agents).then(
    (r) => process.send!({ ok: true, result: r }),
    (e) => process.send!({ ok: false, error: String(e) }),
  );
});
process.send!({ ready: true, agents: agents.length });
