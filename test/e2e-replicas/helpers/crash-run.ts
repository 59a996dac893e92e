import { X509Certificate } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { expect } from "vitest";
import { verifyAuditChain } from "../../../src/audit/verify.js";
import type { TestAgent } from "../../helpers/test-ca.js";
import { type Cluster, challengeAt, type Replica, redeemAt } from "./cluster.js";

// kill -9 of replica processes at random moments while clients issue without pause,
// then the promises of "nothing lost" are checked against the store:
//   - every certificate a client received is recorded, byte for byte;
//   - no serial repeats; every recorded certificate has its allow event;
//   - a recorded certificate nobody received belongs to a request cut off by a kill;
//   - no challenge is stuck or spent twice: a redeemed one is the nonce of exactly one
//     certificate row (its only record); one whose redemption a kill cut off before it
//     was recorded can still be redeemed (unexpired);
//   - the audit chain verifies.

export interface CrashOptions {
  replicas: number; // processes serving at once (at least 2, so one is always up)
  kills: number; // kill -9 at least this many times
  workers: number; // concurrent issuing clients
  agents: number;
  deadlineMs: number; // the kills must be done by then
  seed: number;
}

export interface CrashStats {
  kills: number;
  received: number;
  recorded: number;
  cutOff: number;
  redeemedAfter: number;
  killPhaseMs: number;
  ms: number;
}

/** A small seeded PRNG (mulberry32): a failing run can be replayed from its seed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function runCrashScenario(cluster: Cluster, o: CrashOptions): Promise<CrashStats> {
  const t0 = Date.now();
  const rand = prng(o.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  let started = 0;
  const live: Replica[] = await Promise.all(
    Array.from({ length: o.replicas }, () => cluster.start(`r${++started}`)),
  );
  const ca = cluster.rootPem();
  const agents: TestAgent[] = [];
  for (let i = 0; i < o.agents; i++) agents.push(await cluster.seedAgent(i + 1));

  const received = new Map<string, { der: Buffer; nonce: string }>(); // by serial hex
  const cutOff = new Map<string, TestAgent>(); // nonces whose redemption was cut off by a kill
  let running = true;

  async function worker(): Promise<void> {
    while (running) {
      const agent = pick(agents);
      const from = live.length ? pick(live) : null;
      if (!from) {
        await sleep(10);
        continue;
      }
      let nonce: Buffer;
      try {
        nonce = await challengeAt(from.url, ca, agent);
      } catch {
        continue; // the replica died; an unanswered challenge is checked below
      }
      const to = live.length ? pick(live) : from;
      try {
        const res = await redeemAt(to.url, ca, agent, nonce);
        if (res.status !== 201) throw new Error(`issuance at ${to.name}: ${res.status} ${res.text}`);
        const der = new X509Certificate((res.json as { certificate: string }).certificate).raw;
        const serial = new X509Certificate(der).serialNumber.toLowerCase();
        expect(received.has(serial), `serial ${serial} received twice`).toBe(false);
        received.set(serial, { der, nonce: nonce.toString("hex") });
        // Bounded: sustained, but leaving CPU for the restarts (on 2 cores an unpaced
        // load starves them and the kills come slowly).
        await sleep(20);
      } catch (e) {
        if (e instanceof Error && /issuance at/.test(e.message)) throw e;
        cutOff.set(nonce.toString("hex"), agent); // connection reset/refused: outcome unknown to the client
      }
    }
  }

  async function killer(): Promise<number> {
    let kills = 0;
    const restarts: Promise<void>[] = [];
    while (kills < o.kills) {
      if (Date.now() - t0 > o.deadlineMs) throw new Error(`only ${kills} kills within ${o.deadlineMs} ms`);
      await sleep(100 + Math.floor(rand() * 250));
      if (live.length < 2) continue; // keep one replica serving
      const victim = pick(live);
      live.splice(live.indexOf(victim), 1);
      await victim.kill9();
      kills++;
      restarts.push(
        cluster.start(`r${++started}`).then((r) => {
          live.push(r);
        }),
      );
    }
    await Promise.all(restarts);
    return kills;
  }

  const workers = Array.from({ length: o.workers }, () => worker());
  const tKills = Date.now();
  let kills: number;
  let killPhaseMs = 0;
  try {
    kills = await killer();
    killPhaseMs = Date.now() - tKills;
    await sleep(300); // issuance on the restarted replicas
  } finally {
    running = false;
    await Promise.allSettled(workers);
  }
  await Promise.all(workers); // surface a worker's assertion failure
  // The last crash: everyone still serving dies mid-stride too.
  for (const r of live.splice(0)) await r.kill9();

  // Checks, on the store's own connection.
  const store = cluster.store;
  const cas = await store.tx((tx) => tx.listCaCertificates());
  const issuer = cas.find((c) => c.role === "intermediate" && c.slot === "current")!;
  const issuerKeyId = Buffer.from(issuer.id, "hex");
  const recorded = new Map<string, { nonce: string | null }>();
  const consumedWithCert = new Set<string>();
  for (const agent of agents) {
    for (const c of await store.tx((tx) => tx.listCertificatesByAgent(agent.agentId))) {
      const serial = c.serial.toString("hex");
      expect(recorded.has(serial), `serial ${serial} recorded twice`).toBe(false);
      recorded.set(serial, { nonce: c.challengeNonce?.toString("hex") ?? null });
      const nonce = c.challengeNonce?.toString("hex");
      expect(nonce, `certificate ${serial} without its challenge`).toBeDefined();
      expect(consumedWithCert.has(nonce!), `challenge ${nonce} has two certificates`).toBe(false);
      consumedWithCert.add(nonce!);
    }
  }
  for (const [serial, r] of received) {
    const rec = await store.tx((tx) => tx.getCertificate(issuerKeyId, Buffer.from(serial, "hex")));
    expect(rec, `received certificate ${serial} is not in the store`).not.toBeNull();
    expect(rec!.der.equals(r.der)).toBe(true);
    expect(rec!.challengeNonce?.toString("hex")).toBe(r.nonce);
  }
  for (const [serial, r] of recorded) {
    if (!received.has(serial))
      expect(cutOff.has(r.nonce ?? ""), `certificate ${serial} appeared from nowhere`).toBe(true);
  }

  // No challenge is stuck. Minting writes nothing, and a redemption writes only its
  // certificate row (carrying the nonce, unique), so a redemption a kill cut off before
  // it was recorded left nothing behind: its nonce (unexpired) can still be redeemed, at
  // a replica started after the crashes.
  const restarted = await cluster.start(`r${++started}`);
  let redeemedAfter = 0;
  const now = Date.now();
  for (const [hex, agent] of cutOff) {
    if (consumedWithCert.has(hex)) continue; // recorded before the kill
    const nonce = Buffer.from(hex, "hex");
    // The nonce's MAC'd expiry (bytes 12..18, ms big-endian; authority/challenges.ts).
    if (nonce.readUIntBE(12, 6) <= now + 5_000) continue;
    const res = await redeemAt(restarted.url, ca, agent, nonce);
    expect(res.status, `cut-off challenge ${hex} could not be redeemed: ${res.text}`).toBe(201);
    redeemedAfter++;
  }
  await restarted.kill9();

  const audit = await verifyAuditChain(store);
  expect(audit.ok, JSON.stringify(audit)).toBe(true);
  const events = await store.tx((tx) => tx.listAuditEvents(1, 1_000_000));
  const allows = events.filter((e) => e.type === "certificate.issue" && e.decision === "allow");
  expect(allows.length).toBe(recorded.size + redeemedAfter);
  expect(await store.tx((tx) => tx.countCertificates())).toBe(recorded.size + redeemedAfter);

  return {
    kills,
    received: received.size,
    recorded: recorded.size,
    cutOff: cutOff.size,
    redeemedAfter,
    killPhaseMs,
    ms: Date.now() - t0,
  };
}
