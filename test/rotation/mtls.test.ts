import { once } from "node:events";
import type { AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import * as tls from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BundleTrust, trustFromPem, verifyBundleUpdate } from "../../src/agent/bundle-verify.js";
import { rootActivate, rootPrepare, rootRetire, rootStatus } from "../../src/authority/rotation-root.js";
import { https } from "../helpers/https.js";
import { issueVia, type TestAgent } from "../helpers/test-ca.js";
import { pkcs8Pem, type RotationCa, startRotationCa } from "./helpers.js";

// Two agents doing mTLS in a loop (Node tls, each trusting the bundle it last accepted
// through verifyBundleUpdate) while the CA goes through a full root rotation (prepare,
// activate, retire) and several intermediate rotations. Each iteration both agents renew,
// both update their bundle, and they handshake: zero failures allowed.
//
// TLS checks validity against the wall clock, so the CA's manual clock stays within
// (wall - leaf lifetime, wall]: it runs a little behind real time and is moved forward one
// second per iteration, waiting for the wall clock when it would get ahead. Lifetimes are
// the shortest the schema allows, so the whole ceremony takes under a minute of CA time.

const CONFIG = `
profiles:
  default:
    formats: [test-signed]
    keyResidency: [bound]
    lifetime: 30s
    maxLifetime: 30s
issuance:
  backdate: 5s
rotation:
  auto: false
  checkInterval: 1s
  propagation: 2s
  intermediateActiveFor: 8s
`;
const LIFETIME = 30_000;

let ca: RotationCa;
beforeAll(async () => {
  ca = await startRotationCa(CONFIG, Date.now() - LIFETIME + 3_000);
});
afterAll(async () => {
  await ca?.close();
});

interface Peer {
  agent: TestAgent;
  trust: BundleTrust;
  bundlePem: string;
  key: string;
  cert: string;
}

async function renew(p: Peer): Promise<void> {
  const { res, key } = await issueVia(ca, p.agent);
  if (res.status !== 201) throw new Error(`issuance failed: ${res.status} ${res.text}`);
  const out = res.json as { certificate: string; chain: string[] };
  p.cert = out.certificate + out.chain.join("");
  p.key = await pkcs8Pem(key.privateKey);
  const b = await https(`${ca.url}/v1/bundle`, { ca: ca.trustPem() });
  const v = await verifyBundleUpdate(p.trust, b.json, { now: Date.now() });
  p.trust = v.trust;
  p.bundlePem = v.pem;
}

/** One mutual TLS handshake, A serving and B connecting; true when both sides authorised the other. */
async function handshake(a: Peer, b: Peer): Promise<{ ok: boolean; why: string }> {
  const server = tls.createServer({
    key: a.key,
    cert: a.cert,
    ca: a.bundlePem,
    requestCert: true,
    rejectUnauthorized: true,
    minVersion: "TLSv1.3",
  });
  const serverSide = new Promise<{ ok: boolean; why: string }>((resolve) => {
    server.once("secureConnection", (s) => {
      resolve({ ok: s.authorized, why: String(s.authorizationError ?? "") });
      s.end("ok");
    });
    server.once("tlsClientError", (e) => resolve({ ok: false, why: `server: ${e.message}` }));
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const port = (server.address() as AddressInfo).port;
  try {
    const client = tls.connect({
      host: "127.0.0.1",
      port,
      key: b.key,
      cert: b.cert,
      ca: b.bundlePem,
      checkServerIdentity: () => undefined,
    });
    const clientSide = await new Promise<{ ok: boolean; why: string }>((resolve) => {
      client.once("secureConnect", () =>
        resolve({ ok: client.authorized, why: String(client.authorizationError ?? "") }),
      );
      client.once("error", (e) => resolve({ ok: false, why: `client: ${e.message}` }));
    });
    const s = await serverSide;
    client.destroy();
    return { ok: clientSide.ok && s.ok, why: `${clientSide.why} ${s.why}`.trim() };
  } finally {
    server.close();
  }
}

describe("mTLS through root and intermediate rotations", () => {
  it("has zero failed handshakes, and each relying party's bundle always accepts its peer", async () => {
    const deps = ca.deps();
    const initial = trustFromPem(ca.rootPem, ca.rc.config.ca.trustDomain);
    const peers: Peer[] = [];
    for (let i = 0; i < 2; i++) {
      peers.push({ agent: await ca.seedAgent(), trust: initial, bundlePem: ca.rootPem, key: "", cert: "" });
    }
    const [a, b] = peers as [Peer, Peer];
    const issuers = new Set<string>();
    const rootSteps: string[] = [];
    const failures: string[] = [];
    let handshakes = 0;
    let retiredAt: number | null = null;
    const started = Date.now();

    for (let i = 0; i < 200; i++) {
      // CA time: one second on, never ahead of the wall clock, never a lifetime behind it.
      let target = ca.clock.now() + 1_000;
      const ceiling = Date.now() - 1_000;
      if (target > ceiling) await sleep(target - ceiling);
      target = Math.max(target, Date.now() - LIFETIME + 3_000);
      ca.clock.set(target);

      await ca.running.rotation.tick();
      const s = await rootStatus(deps);
      if (s.phase === "steady" && rootSteps.length === 0 && i >= 3) {
        await rootPrepare(deps);
        rootSteps.push("prepare");
      } else if (s.phase === "prepared" && ca.clock.now() >= Date.parse(s.activateAllowedAt!)) {
        await rootActivate(deps);
        rootSteps.push("activate");
      } else if (s.phase === "activated" && ca.clock.now() >= Date.parse(s.retireAllowedAt!)) {
        await rootRetire(deps);
        rootSteps.push("retire");
        retiredAt = i;
      }
      await ca.running.rotation.refresh();
      await ca.updateTrust();

      await renew(a);
      await renew(b);
      issuers.add(ca.running.ca.issuer.record.id);
      for (const [x, y] of [
        [a, b],
        [b, a],
      ] as const) {
        const r = await handshake(x, y);
        handshakes++;
        if (!r.ok) failures.push(`iteration ${i}: ${r.why}`);
      }
      if (retiredAt !== null && i >= retiredAt + 12) break;
    }
    expect(failures).toEqual([]);
    expect(rootSteps).toEqual(["prepare", "activate", "retire"]);
    expect(issuers.size).toBeGreaterThanOrEqual(4);
    expect(handshakes).toBeGreaterThanOrEqual(80);
    const journal = await ca.running.store.tx((tx) => tx.listCaJournal());
    const activations = journal.filter((e) => e.kind === "intermediate" && e.step === "activated");
    expect(activations.length).toBeGreaterThanOrEqual(4);
    expect(a.trust.roots.map((r) => r.id)).toEqual(b.trust.roots.map((r) => r.id));
    expect(a.trust.roots).toHaveLength(1);
    expect(a.trust.roots[0]!.id).not.toBe(initial.roots[0]!.id);
    console.log(`mtls: ${handshakes} handshakes, ${issuers.size} issuers, ${(Date.now() - started) / 1000}s`);
  }, 180_000);
});
