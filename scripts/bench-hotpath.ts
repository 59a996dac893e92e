// CPU cost, step by step, of the non-HTTP, non-store part of one attested issuance, as
// src/authority/issue.ts runs it: body parse (zod), readCsr (strict DER + CSR signature
// verify), tpm-certify verification through the registered format (base64url, TPM2B_PUBLIC,
// TPMS_ATTEST, TPMT_SIGNATURE, AK signature, binding, Name, key rules, certified key == CSR
// key), leaf encode + sign (template encoder, node:crypto on the libuv pool), checkLeafFast,
// and the audit event (canonical JSON, copy, SHA-256). Single thread, in-process.
//
//   node --import tsx scripts/bench-hotpath.ts [--n 2000] [--warmup 500] [--runs 5]
//        [--devices 2000] [--clock wall|cpu] [--sync-sign]
//
// Inputs are made up front with the bench's software TPM (scripts/bench/sim-tpm.ts, the same
// structures the load tool sends): a pool of devices with activated AKs (the stored AK is a
// fresh Buffer per request, as a store read gives it) and, per call, a fresh CSR key, CSR and
// TPM2_Certify. Each step is timed on its own over N calls; a run prints the median per step
// and the table the median over runs.
import { createHash, sign } from "node:crypto";
import { performance } from "node:perf_hooks";
import { certificationRequestInfo } from "../src/agent/csr.js";
import { sealAuditEvent } from "../src/audit/index.js";
import { issueRequestSchema, parseBody } from "../src/authority/wire.js";
import { configSchema, type Profile } from "../src/config/schema.js";
import { bindingDigest } from "../src/evidence/binding.js";
import type { EvidenceContext, EvidenceFacts } from "../src/evidence/format.js";
import { tpmFormats } from "../src/evidence/tpm-formats.js";
import { KeyObjectSigner } from "../src/keys/key-object-signer.js";
import type { CaSigner } from "../src/keys/keystore.js";
import { ManualClock } from "../src/runtime/clock.js";
import type { Agent, Device } from "../src/store/types.js";
import { bitString, oid, sequence } from "../src/x509/der.js";
import {
  type CsrInfo,
  checkLeafFast,
  createLeafEncoder,
  type LeafInput,
  readCsr,
} from "../src/x509/index.js";
import { makeIssuer } from "../test/x509/fixtures.js";
import { certify, certifyAttestation, createKey, type SimAk, simAk, simEk } from "./bench/sim-tpm.js";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: number) => {
  const i = argv.indexOf(name);
  return i >= 0 ? Number(argv[i + 1]) : dflt;
};
const N = opt("--n", 2000);
const WARMUP = opt("--warmup", 500);
const RUNS = opt("--runs", 5);
// As many devices as the full load benchmark (`npm run bench`, --devices 2000), visited round-robin.
const DEVICES = opt("--devices", 2000);
// --clock wall (the default): elapsed time. --clock cpu: this process's CPU time (user +
// system, all threads: the libuv pool's signing counts, and so do GC helper threads).
const CLOCK = argv.includes("--clock") ? argv[argv.indexOf("--clock") + 1] : "wall";
const now =
  CLOCK === "wall"
    ? () => performance.now()
    : () => {
        const u = process.cpuUsage();
        return (u.user + u.system) / 1000;
      };

const b64 = (b: Buffer) => b.toString("base64url");
const ECDSA_SHA256 = sequence(oid("1.2.840.10045.4.3.2"));
const NOW = Date.UTC(2027, 0, 1);
const profile = configSchema.parse({}).profiles.default as Profile;

interface Dev {
  ak: SimAk;
  agent: Agent;
  device: Device;
}

function makeDevice(i: number): Dev {
  const ek = simEk();
  const ak = simAk(ek);
  const id = `dev-${i}`;
  const device = {
    id,
    kind: "tpm",
    status: "active",
    ekPubHash: ek.hash,
    ekCertIssuer: null,
    akName: ak.name,
    akPublic: ak.tpm2b,
    akQualifiedName: ak.qualifiedName,
    serial: null,
    mdmId: null,
    managed: false,
    compliant: false,
    assignedOwnerId: null,
    createdAt: 0,
    updatedAt: 0,
  } as Device;
  const agent = {
    id: `agent-${i}`,
    ownerId: `owner-${i}`,
    deviceId: id,
    spiffeId: `spiffe://bench.example/agent/${i}`,
    profile: "default",
  } as Agent;
  return { ak, agent, device };
}

interface Case {
  dev: Dev;
  body: Record<string, unknown>;
}

function makeCase(dev: Dev): Case {
  const nonce = createHash("sha256").update(Math.random().toString()).digest();
  const key = createKey();
  const ev = certify(dev.ak, key, bindingDigest(nonce, key.spki));
  const tbs = certificationRequestInfo(key.spki);
  const csr = sequence(tbs, ECDSA_SHA256, bitString(sign("sha256", tbs, key.privateKey)));
  return {
    dev,
    body: {
      csr: b64(csr),
      nonce: b64(nonce),
      attestation: certifyAttestation(key, ev),
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function main(): Promise<void> {
  const devs = Array.from({ length: DEVICES }, (_, i) => makeDevice(i));
  const total = WARMUP + N;
  const cases = Array.from({ length: total }, (_, i) => makeCase(devs[i % DEVICES]!));
  const [certifyFormat] = tpmFormats();
  const test = await makeIssuer("P-256");
  // The file keystore's signer (async sign on the libuv pool), as the server uses it; with
  // --sync-sign, the same key signing synchronously on the main thread instead (to weigh
  // the pool hand-off: it costs CPU on both threads).
  const pooled = new KeyObjectSigner("bench", test.signer.privateKey);
  const signer: CaSigner = argv.includes("--sync-sign")
    ? {
        label: pooled.label,
        spec: pooled.spec,
        publicKey: pooled.publicKey,
        spki: pooled.spki,
        sign: async (data, hash) => sign(hash, data, { key: test.signer.privateKey, dsaEncoding: "der" }),
      }
    : pooled;
  const encoder = createLeafEncoder({ certificateDer: test.certificateDer, signer });
  const issuerDer = test.certificateDer;
  const clock = new ManualClock(NOW);

  const steps = [
    "zod parse",
    "readCsr+verify",
    "tpm-certify",
    "leaf encode+sign",
    "checkLeafFast",
    "audit seal",
  ];
  const perRun: number[][] = steps.map(() => []);
  let head: { seq: number; hash: Buffer } | null = null;
  // Run 0 is a warm-up pass over every case (untimed): per-process caches (the AK cache
  // among them) reach the state a long-running server has, where every device has been seen.
  for (let run = -1; run < RUNS; run++) {
    const t = steps.map(() => [] as number[]);
    for (let i = 0; i < total; i++) {
      const c = cases[i]!;
      // A store read hands out fresh Buffers: copy the device record's bytes.
      const device = {
        ...c.dev.device,
        akPublic: Buffer.from(c.dev.device.akPublic!),
        akName: Buffer.from(c.dev.device.akName!),
        akQualifiedName: Buffer.from(c.dev.device.akQualifiedName!),
      };
      let t0 = now();
      const req = parseBody(issueRequestSchema, c.body);
      let t1 = now();
      const s0 = t1 - t0;
      t0 = now();
      const csr: CsrInfo = readCsr(req.csr);
      t1 = now();
      const s1 = t1 - t0;
      const ctx: EvidenceContext = {
        agent: c.dev.agent,
        device,
        nonce: req.nonce,
        csrKey: { spki: csr.spki, publicKey: csr.publicKey },
        profile,
        clock,
      };
      t0 = now();
      const facts: EvidenceFacts = await certifyFormat!.verify(req.attestation, ctx);
      t1 = now();
      const s2 = t1 - t0;
      const leaf: LeafInput = {
        serial: Buffer.from(
          createHash("md5")
            .update(String(i))
            .digest()
            .map((b, j) => (j === 0 ? (b & 0x3f) | 0x40 : b)),
        ),
        notBefore: NOW - 60_000,
        notAfter: NOW + 3_600_000,
        spki: csr.spki,
        spiffeId: c.dev.agent.spiffeId,
        assurance: {
          ownerId: c.dev.agent.ownerId,
          deviceId: c.dev.agent.deviceId,
          agentId: c.dev.agent.id,
          attestationFormat: facts.format,
          keyResidency: facts.keyResidency,
        },
      };
      t0 = now();
      const der = await encoder.issue(leaf);
      t1 = now();
      const s3 = t1 - t0;
      t0 = now();
      checkLeafFast(der, { issuerCertificate: issuerDer, leaf });
      t1 = now();
      const s4 = t1 - t0;
      const fp = createHash("sha256").update(der).digest();
      t0 = now();
      const ev = sealAuditEvent(head, NOW, {
        type: "certificate.issue",
        decision: "allow",
        code: null,
        actor: `agent:${c.dev.agent.id}`,
        subject: `agent:${c.dev.agent.id}`,
        data: {
          serial: leaf.serial.toString("hex"),
          issuer: "0123456789abcdef0123456789abcdef",
          fingerprint: fp.toString("hex"),
          nonce: req.nonce.toString("base64url"),
          notBefore: leaf.notBefore,
          notAfter: leaf.notAfter,
          ownerId: c.dev.agent.ownerId,
          deviceId: c.dev.agent.deviceId,
          format: facts.format,
          keyResidency: facts.keyResidency,
          evidence: facts.details,
        },
      });
      t1 = now();
      const s5 = t1 - t0;
      head = ev;
      if (i >= WARMUP) {
        for (const [k, s] of [s0, s1, s2, s3, s4, s5].entries()) t[k]!.push(s * 1000);
      }
    }
    if (run < 0) continue;
    const meds = t.map(median);
    for (const [k, m] of meds.entries()) perRun[k]!.push(m);
    console.log(
      `run ${run + 1}: ${meds.map((m) => m.toFixed(1)).join("  ")}  total ${meds.reduce((a, b) => a + b, 0).toFixed(1)}`,
    );
  }
  console.log(
    `\nnode ${process.version}, ${N} issuances after ${WARMUP} warm-up, ${RUNS} runs, ${CLOCK} time; µs per step (median of per-run medians)`,
  );
  let sum = 0;
  steps.forEach((name, k) => {
    const m = median(perRun[k]!);
    sum += m;
    console.log(`${name.padEnd(20)} ${m.toFixed(1).padStart(8)}`);
  });
  console.log(`${"sum".padEnd(20)} ${sum.toFixed(1).padStart(8)}`);
}

await main();
