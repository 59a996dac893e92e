// MEASURING TOOL ONLY (`npm run bench -- --floor`): the "floor" peer. A bare node:https server
// that speaks the part of Mayfly's agent protocol the bench's load tool uses (challenge, then
// certificate) and does per issuance only the work Mayfly's design mandates, so that its
// server CPU per issuance is the lowest any Node 20 server doing that work can show on this
// machine. It is NOT a CA: no agent, owner, binding or device liveness, no policy, no evidence
// checks beyond the two signatures (no binding digest, no certified Name, no key attributes),
// no audit chain, no metrics, no logging. Never imported by src/ or by tests.
//
//   node floor-server.js --dir DIR --devices devices.jsonl --port N [--workers 2]
//                        [--trust-domain mayfly.internal]
//
// The primary makes a P-256 root, an intermediate that signs leaves and the listener's
// certificate (as Mayfly's first start does: listener leaf + intermediate in the TLS chain,
// the client trusting DIR/root.pem), forks the workers (node:cluster, as `mayfly serve
// --workers N`), and writes DIR/ready once every worker listens.
//
// Per issuance, in a worker:
//   challenge:   a 32-byte nonce (Mayfly's MAC'd layout, see below), JSON { nonce, expiresAt }
//   certificate: JSON.parse, base64url-decode; the CSR key imported (SPKI sliced out of the
//                CSR, JWK import as src/x509/agent-key.ts does); the CSR signature over its
//                CertificationRequestInfo; the nonce; the TPM2_Certify signature over
//                certifyInfo with the device's AK (KeyObject made once per device); the leaf
//                from Mayfly's template encoder (createLeafEncoder, signed with node:crypto
//                on the event loop, as KeyObjectSigner does); its signature verified; one
//                row in SQLite; the answer once an fsync that began after the row was
//                written has finished.
//
// Nonces. A challenge and the certificate request that redeems it need not reach the same
// worker: node:cluster hands out connections, not requests, and the load's keep-alive pool
// sends each request on whichever socket is free. An in-memory map of issued nonces per
// worker would refuse about half the redemptions. So the nonce is Mayfly's own
// (src/authority/challenges.ts mintNonce/verifyChallenge: random, expiry, agent tag and an
// HMAC under a key the primary hands every worker; two HMAC-SHA256 to mint, two to check),
// and "used once" is the row's UNIQUE nonce, as in Mayfly.
//
// Storage: one SQLite file PER WORKER, WAL, synchronous=FULL (SQLite fsyncs the WAL inside
// every COMMIT). Why not one shared file, as Mayfly has: two writers on one file take turns
// on its write lock, and with synchronous=FULL the lock is held across the fsync; a worker
// that finds it taken sleeps in SQLite's busy handler with its event loop blocked. That is
// waiting, not CPU, but it would cut the floor's rate for reasons that are not the mandated
// work. The price: a nonce is refused a second time by the worker that recorded it, not by
// the other one (a real CA needs the one store; Mayfly has it).
//
// Group commit: rows made during one turn of the event loop are inserted in one
// BEGIN ... COMMIT at the next check phase (setImmediate), whose fsync covers all of them
// and begins after the last was written; each answer is written after that COMMIT returned.
// The fsync blocks the worker's event loop for its duration (~0.13 ms on an idle disk here,
// 1.3-1.4 ms under the bench's load), which also lets more work gather for the next group:
// it costs the floor rate, hardly CPU. Checkpoints are SQLite's default (in COMMIT,
// every 1000 WAL pages).
import cluster from "node:cluster";
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  verify,
} from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer } from "node:https";
import { join } from "node:path";
import Database from "better-sqlite3";
import { toPem } from "../../src/authority/ca-state.js";
import { mintNonce, verifyChallenge } from "../../src/authority/challenges.js";
import { KeyObjectSigner } from "../../src/keys/key-object-signer.js";
import { systemRandom } from "../../src/runtime/clock.js";
import { leafPemJson } from "../../src/server/routes/issuance-answer.js";
import { publicKeyObject, unmarshalTpm2bPublic } from "../../src/tpm/index.js";
import {
  buildIntermediate,
  buildRoot,
  buildServerCertificate,
  createLeafEncoder,
  type LeafInput,
  newSerial,
} from "../../src/x509/index.js";
import type { DeviceLine } from "./load-worker.js";

const argv = process.argv.slice(2);
const opt = (f: string, d?: string): string => {
  const i = argv.indexOf(f);
  const v = i >= 0 ? argv[i + 1] : d;
  if (v === undefined) throw new Error(`floor-server: ${f} is required`);
  return v;
};
const DIR = opt("--dir");
const DEVICES = opt("--devices");
const PORT = Number(opt("--port"));
const WORKERS = Number(opt("--workers", "2"));
const TRUST_DOMAIN = opt("--trust-domain", "mayfly.internal");

// Mayfly's defaults: profile lifetime 5 min, issuance.backdate 30 s, challengeTtl 60 s.
const LIFETIME_MS = 5 * 60_000;
const BACKDATE_MS = 30_000;
const CHALLENGE_TTL_MS = 60_000;

/** What the primary hands each worker (environment, JSON): all public but two keys. */
interface Material {
  rootDer: string;
  interDer: string;
  interKey: string;
  tlsCert: string;
  tlsKey: string;
  challengeKey: string;
}

const b64 = (b: Buffer) => b.toString("base64");
const pkcs8 = (k: KeyObject) => k.export({ type: "pkcs8", format: "der" });

async function primary(): Promise<void> {
  mkdirSync(DIR, { recursive: true });
  const now = Date.now();
  const random = systemRandom;
  const rootKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const interKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const tlsKey = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
  const rootSigner = new KeyObjectSigner("floor-root", rootKey);
  const interSigner = new KeyObjectSigner("floor-intermediate", interKey);
  const root = await buildRoot({
    signer: rootSigner,
    subject: { commonName: "Floor bench root", organization: "Bench" },
    serial: newSerial(random),
    notBefore: now - 60_000,
    notAfter: now + 30 * 86_400_000,
  });
  const inter = await buildIntermediate({
    issuerCertificate: root.der,
    issuerSigner: rootSigner,
    subjectPublicKey: interSigner.spki,
    subject: { commonName: "Floor bench intermediate", organization: "Bench" },
    serial: newSerial(random),
    notBefore: now - 60_000,
    notAfter: now + 7 * 86_400_000,
  });
  // The listener's certificate as Mayfly's (start.ts tlsFor): a P-256 leaf by the issuer,
  // with Mayfly's default names, sent with the intermediate.
  const tls = await buildServerCertificate({
    issuerCertificate: inter.der,
    issuerSigner: interSigner,
    subjectPublicKey: createPublicKey(tlsKey).export({ type: "spki", format: "der" }),
    serial: newSerial(random),
    dnsNames: ["localhost"],
    ipAddresses: ["127.0.0.1", "::1"],
    notBefore: now - 60_000,
    notAfter: now + 86_400_000,
  });
  writeFileSync(join(DIR, "root.pem"), toPem(root.der));
  const material: Material = {
    rootDer: b64(root.der),
    interDer: b64(inter.der),
    interKey: b64(pkcs8(interKey)),
    tlsCert: toPem(tls.der) + toPem(inter.der),
    tlsKey: tlsKey.export({ type: "pkcs8", format: "pem" }) as string,
    challengeKey: b64(randomBytes(32)),
  };
  const env = { FLOOR_MATERIAL: JSON.stringify(material) };
  let listening = 0;
  let stopping = false;
  for (let i = 0; i < WORKERS; i++) {
    const w = cluster.fork({ ...env, FLOOR_WORKER: String(i) });
    w.on("message", (m: { floor?: string }) => {
      if (m?.floor === "listening" && ++listening === WORKERS) writeFileSync(join(DIR, "ready"), "");
    });
  }
  cluster.on("exit", (w, code, signal) => {
    if (!stopping) {
      console.error(`floor worker ${w.process.pid} exited (${code ?? signal}); stopping`);
      stop("SIGTERM");
      process.exitCode = 1;
    }
    if (Object.keys(cluster.workers ?? {}).length === 0) process.exit();
  });
  const stop = (signal: NodeJS.Signals) => {
    stopping = true;
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill(signal);
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}

/** A request refused: answered as a problem document, which CaClient turns into an error. */
class Refusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    detail: string,
  ) {
    super(detail);
  }
}

/** Where the content of the DER TLV at `at` starts and where the TLV ends (lengths up to 64 KiB). */
function tlvAt(b: Buffer, at: number): { start: number; end: number } {
  let len = b[at + 1]!;
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 1) len = b[at + 2]!;
    else if (n === 2) len = b.readUInt16BE(at + 2);
    else throw new Refusal(400, "request.invalid", "DER length");
    start += n;
  }
  const end = start + len;
  if (end > b.length) throw new Refusal(400, "request.invalid", "DER past its end");
  return { start, end };
}

// A P-256 SubjectPublicKeyInfo up to the uncompressed point's 04 (agent-key.ts, CANONICAL_EC_PREFIX).
const P256_SPKI_PREFIX = Buffer.from("3059301306072a8648ce3d020106082a8648ce3d03010703420004", "hex");

interface AgentFacts {
  /** The device's AK, imported once at start (Mayfly caches it per device: tpm-common.ts). */
  ak: KeyObject;
  spiffeId: string;
  ownerId: string;
  deviceId: string;
}

/**
 * The bench's devices (setup.ts writes the file after activating them through Mayfly): the
 * AK public of each agent's device, and for the leaf the same values Mayfly's would carry
 * (spiffe ID, owner bench-owner-<i/8>; the device id has Mayfly's shape, dev_ + 12 bytes).
 */
function loadAgents(): Map<string, AgentFacts> {
  const agents = new Map<string, AgentFacts>();
  readFileSync(DEVICES, "utf8")
    .split("\n")
    .filter(Boolean)
    .forEach((l, i) => {
      const d = JSON.parse(l) as DeviceLine;
      const tpm2b = Buffer.from(d.akTpm2b, "base64url");
      agents.set(d.agentId, {
        ak: publicKeyObject(unmarshalTpm2bPublic(tpm2b)),
        spiffeId: `spiffe://${TRUST_DOMAIN}/agent/${d.agentId}`,
        ownerId: `bench-owner-${Math.floor(i / 8)}`,
        deviceId: `dev_${createHash("sha256").update(tpm2b).digest().subarray(0, 12).toString("base64url")}`,
      });
    });
  return agents;
}

interface Pending {
  res: ServerResponse;
  serial: Buffer;
  agentId: string;
  nonce: Buffer;
  der: Buffer;
  fingerprint: Buffer;
  answer: string;
}

function worker(): void {
  const m = JSON.parse(process.env.FLOOR_MATERIAL!) as Material;
  const challengeKey = Buffer.from(m.challengeKey, "base64");
  const interDer = Buffer.from(m.interDer, "base64");
  const signer = new KeyObjectSigner(
    "floor-intermediate",
    createPrivateKey({ key: Buffer.from(m.interKey, "base64"), format: "der", type: "pkcs8" }),
  );
  const encoder = createLeafEncoder({ certificateDer: interDer, signer });
  const issuerKey = signer.publicKey;
  const agents = loadAgents();
  const random = systemRandom;
  // The parts of the answer that are the same every time (issuance-answer.ts does the same).
  const chainJson = JSON.stringify(toPem(interDer));
  const bundleJson = JSON.stringify(toPem(Buffer.from(m.rootDer, "base64")) + toPem(interDer));

  const db = new Database(join(DIR, `floor-${process.env.FLOOR_WORKER}.db`));
  db.pragma("journal_mode = WAL");
  db.pragma("synchronous = FULL");
  // serial: Mayfly's primary key (with the issuer); nonce UNIQUE: a nonce redeems once.
  db.exec(
    "CREATE TABLE IF NOT EXISTS certificates (serial BLOB PRIMARY KEY, agent_id TEXT NOT NULL, " +
      "nonce BLOB NOT NULL UNIQUE, der BLOB NOT NULL, fingerprint BLOB NOT NULL)",
  );
  const begin = db.prepare("BEGIN");
  const commit = db.prepare("COMMIT");
  const rollback = db.prepare("ROLLBACK");
  const insert = db.prepare(
    "INSERT INTO certificates (serial, agent_id, nonce, der, fingerprint) VALUES (?, ?, ?, ?, ?)",
  );

  let group: Pending[] = [];
  // For the log at exit (floor.log in the bench's directory, --keep): how large the groups
  // were and how long COMMIT (with its fsync) held the event loop. Two clock reads a group.
  const stats = { rows: 0, commits: 0, commitNs: 0n };
  const flush = () => {
    const g = group;
    group = [];
    const ok: boolean[] = new Array(g.length);
    try {
      begin.run();
      for (let i = 0; i < g.length; i++) {
        const p = g[i]!;
        try {
          insert.run(p.serial, p.agentId, p.nonce, p.der, p.fingerprint);
          ok[i] = true;
        } catch {
          // A failed INSERT undoes itself only: the nonce was redeemed before (or, never
          // seen, a serial collision), and the rest of the group goes on.
          ok[i] = false;
        }
      }
      // synchronous=FULL: returns once the WAL, with every row of the group, is fsynced.
      const t0 = process.hrtime.bigint();
      commit.run();
      stats.commitNs += process.hrtime.bigint() - t0;
      stats.commits++;
      stats.rows += g.length;
    } catch (e) {
      if (db.inTransaction) rollback.run();
      for (const p of g) problem(p.res, new Refusal(500, "internal.error", `commit: ${String(e)}`));
      return;
    }
    for (let i = 0; i < g.length; i++) {
      const p = g[i]!;
      if (ok[i]) json(p.res, 201, p.answer);
      else problem(p.res, new Refusal(409, "challenge.consumed", "the challenge was used already"));
    }
  };

  const certificate = async (res: ServerResponse, agentId: string, text: string): Promise<Pending> => {
    const body = JSON.parse(text) as {
      csr: string;
      nonce: string;
      attestation: { certifyInfo: string; signature: string };
    };
    const a = agents.get(agentId);
    if (!a) throw new Refusal(404, "agent.not_found", `no agent ${agentId}`);
    const csr = Buffer.from(body.csr, "base64url");
    const nonce = Buffer.from(body.nonce, "base64url");
    // keyPublic is not decoded: the checks that read it (certified Name, same key as the
    // CSR's) are not part of the floor.
    const certifyInfo = Buffer.from(body.attestation.certifyInfo, "base64url");
    const tpmSig = Buffer.from(body.attestation.signature, "base64url");

    // CertificationRequest ::= SEQUENCE { info SEQUENCE { version, subject, spki, [0] attrs },
    // signatureAlgorithm, signature BIT STRING }: the SPKI is the third TLV of info.
    const req = tlvAt(csr, 0);
    const info = tlvAt(csr, req.start);
    const subject = tlvAt(csr, tlvAt(csr, info.start).end);
    const spkiAt = subject.end;
    const spkiEnd = tlvAt(csr, spkiAt).end;
    if (spkiEnd - spkiAt !== 91 || csr.compare(P256_SPKI_PREFIX, 0, 27, spkiAt, spkiAt + 27) !== 0) {
      throw new Refusal(400, "csr.key_unsupported", "the floor takes P-256 keys only");
    }
    // agent-key.ts's import: the point through JWK, which skips OpenSSL 3's DER decoder.
    // node:crypto still checks the point is on the curve (the ~66 µs of this line).
    const csrKey = createPublicKey({
      key: {
        kty: "EC",
        crv: "P-256",
        x: csr.toString("base64url", spkiAt + 27, spkiAt + 59),
        y: csr.toString("base64url", spkiAt + 59, spkiAt + 91),
      },
      format: "jwk",
    });
    const bits = tlvAt(csr, tlvAt(csr, info.end).end);
    // The BIT STRING's first octet counts unused bits (0); the rest is the Ecdsa-Sig-Value.
    if (
      !verify(
        "sha256",
        csr.subarray(req.start, info.end),
        { key: csrKey, dsaEncoding: "der" },
        csr.subarray(bits.start + 1, bits.end),
      )
    ) {
      throw new Refusal(400, "csr.signature_invalid", "the CSR signature does not verify");
    }

    const now = Date.now();
    try {
      verifyChallenge(challengeKey, nonce, agentId, now);
    } catch (e) {
      throw new Refusal(400, "challenge.not_found", String(e));
    }

    // TPMT_SIGNATURE { sigAlg u16, hash u16, TPM2B r, TPM2B s }: r and s, each left-padded to
    // 32 octets, are the IEEE P1363 form, which node turns into DER itself (as Mayfly's
    // verifyTpmSignature does); sigAlg and hash are not looked at.
    const rLen = tpmSig.readUInt16BE(4);
    const sLen = tpmSig.readUInt16BE(6 + rLen);
    if (rLen > 32 || sLen > 32 || 8 + rLen + sLen !== tpmSig.length) {
      throw new Refusal(400, "attestation.malformed", "not a P-256 TPMT_SIGNATURE");
    }
    const p1363 = Buffer.alloc(64);
    tpmSig.copy(p1363, 32 - rLen, 6, 6 + rLen);
    tpmSig.copy(p1363, 64 - sLen, 8 + rLen);
    if (!verify("sha256", certifyInfo, { key: a.ak, dsaEncoding: "ieee-p1363" }, p1363)) {
      throw new Refusal(400, "attestation.signature_invalid", "does not verify with the device's AK");
    }

    // Mayfly's policy arithmetic (policy/issuance.ts): whole seconds, backdated notBefore.
    const notBefore = Math.floor((now - BACKDATE_MS) / 1000) * 1000;
    const notAfter = Math.floor((now + LIFETIME_MS) / 1000) * 1000;
    const renewAfter = now + Math.floor((notAfter - now) / 2);
    const serial = newSerial(random);
    const leaf: LeafInput = {
      serial,
      notBefore,
      notAfter,
      spki: csr.subarray(spkiAt, spkiEnd),
      spiffeId: a.spiffeId,
      assurance: {
        ownerId: a.ownerId,
        deviceId: a.deviceId,
        agentId,
        attestationFormat: "tpm-certify",
        keyResidency: "tpm",
      },
    };
    const der = await encoder.issue(leaf);
    // Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signature BIT STRING }.
    const cert = tlvAt(der, 0);
    const tbs = tlvAt(der, cert.start);
    const sig = tlvAt(der, tlvAt(der, tbs.end).end);
    if (
      !verify(
        "sha256",
        der.subarray(cert.start, tbs.end),
        { key: issuerKey, dsaEncoding: "der" },
        der.subarray(sig.start + 1, sig.end),
      )
    ) {
      throw new Refusal(500, "internal.error", "the signed leaf does not verify");
    }
    return {
      res,
      serial,
      agentId,
      nonce,
      der,
      fingerprint: createHash("sha256").update(der).digest(),
      answer:
        `{"certificate":${leafPemJson(der)},"chain":[${chainJson}],"serial":"${serial.toString("hex")}",` +
        `"notBefore":"${new Date(notBefore).toISOString()}","notAfter":"${new Date(notAfter).toISOString()}",` +
        `"renewAfter":"${new Date(renewAfter).toISOString()}","bundle":${bundleJson}}`,
    };
  };

  const AGENTS = "/v1/agents/";
  const listener = (req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? "";
    const slash = url.indexOf("/", AGENTS.length);
    if (req.method !== "POST" || !url.startsWith(AGENTS) || slash < 0) {
      if (req.method === "GET" && url === "/readyz") json(res, 200, "{}");
      else problem(res, new Refusal(404, "request.not_found", "the floor serves issuance only"));
      req.resume();
      return;
    }
    const agentId = url.slice(AGENTS.length, slash);
    const what = url.slice(slash + 1);
    if (what === "challenges") {
      // The body ("{}") is not read; node discards it once the answer is sent.
      const expiresAt = Date.now() + CHALLENGE_TTL_MS;
      const nonce = mintNonce(challengeKey, random, agentId, expiresAt);
      json(
        res,
        201,
        `{"nonce":"${nonce.toString("base64url")}","expiresAt":"${new Date(expiresAt).toISOString()}"}`,
      );
      return;
    }
    if (what !== "certificates") {
      problem(res, new Refusal(404, "request.not_found", "the floor serves issuance only"));
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString("utf8");
      certificate(res, agentId, text).then(
        (p) => {
          if (group.push(p) === 1) setImmediate(flush);
        },
        (e) => problem(res, e instanceof Refusal ? e : new Refusal(400, "request.invalid", String(e))),
      );
    });
  };

  const server = createServer({ key: m.tlsKey, cert: m.tlsCert, minVersion: "TLSv1.2" }, listener);
  server.listen(PORT, "127.0.0.1", () => process.send?.({ floor: "listening" }));
  const stop = () => {
    // Rows still waiting get their commit; --cpu-prof writes its profile on process.exit.
    if (group.length > 0) flush();
    server.close();
    server.closeAllConnections();
    db.close();
    const cpu = process.cpuUsage();
    console.error(
      `floor worker ${process.env.FLOOR_WORKER}: ${stats.rows} rows in ${stats.commits} commits ` +
        `(${(stats.rows / stats.commits).toFixed(1)} a commit), COMMIT ${(Number(stats.commitNs / BigInt(stats.commits || 1)) / 1000).toFixed(0)} µs ` +
        `on average; process CPU user ${(cpu.user / 1e6).toFixed(1)} s, system ${(cpu.system / 1e6).toFixed(1)} s`,
    );
    process.exit(0);
  };
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

/** The same answer headers as Mayfly's fast issuance path (fast-issuance.ts). */
function json(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, {
    "cache-control": "no-store",
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

function problem(res: ServerResponse, e: Refusal): void {
  const body = JSON.stringify({ title: e.code, status: e.status, code: e.code, detail: e.message });
  res.writeHead(e.status, {
    "cache-control": "no-store",
    "content-type": "application/problem+json",
    "content-length": Buffer.byteLength(body),
  });
  res.end(body);
}

if (cluster.isPrimary) {
  primary().catch((e) => {
    console.error(e);
    process.exit(1);
  });
} else worker();
