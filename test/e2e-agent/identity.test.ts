import { once } from "node:events";
import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { connect, createServer, type Server } from "node:tls";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type AgentIdentity,
  type EnrolmentState,
  ensureEnrolled,
  type Issued,
  Issuer,
  type PeerIdentity,
  RelyingParty,
  Renewer,
  type Sleep,
  startAgentIdentity,
  writeIssued,
} from "../../src/agent/index.js";
import { ManualClock, systemClock, systemRandom } from "../../src/runtime/clock.js";
import { seedAgentOnDevice } from "../helpers/seed-agent.js";
import { issueVia, startTestCa } from "../helpers/test-ca.js";
import { seededRandom } from "../tpm/helpers/seeded-random.js";
import { type AgentEnv, startAgentEnv } from "./helpers.js";

// The Node library against a real CA and swtpm: an identity whose secureContext() follows
// each renewal while a tls server and client keep handshaking; the renewal loop driven by an
// injected clock across more than three certificate lifetimes, in both key modes; and the
// relying-party helper saying who a peer is, and refusing what it should.

// Separate processes and a shared two-core machine: generous limits, no timing assertions.
vi.setConfig({ testTimeout: 120_000 });

let env: AgentEnv;
let state: EnrolmentState;
let stateDir: string;
beforeAll(async () => {
  env = await startAgentEnv("e2e-agent-identity");
  stateDir = join(env.work, "state");
  ({ state } = await ensureEnrolled({
    tpm: env.tpm,
    tpmSpec: env.tpmSpec,
    ca: env.client,
    stateDir,
    caTrust: env.ca.rootPem,
    clock: systemClock,
  }));
}, 60_000);
afterAll(async () => {
  await env?.close();
});

/** Waits until woken (renewNow, stop): rotations happen exactly when the test says. */
const untilWoken: Sleep = (_ms, signal) =>
  new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });

const TRUST_DOMAIN = "mayfly.internal";

describe("AgentIdentity: mTLS across rotations", () => {
  let server: Server;
  let alpha: AgentIdentity;
  let beta: AgentIdentity;
  afterAll(async () => {
    await alpha?.stop();
    await beta?.stop();
    server?.close();
  });

  it("a tls server and client keep handshaking, and an open connection keeps working, across rotations", async () => {
    const a = await seedAgentOnDevice(env.ca, state.deviceId);
    const b = await seedAgentOnDevice(env.ca, state.deviceId);
    const common = { tpm: env.tpm, stateDir, clock: systemClock, random: systemRandom, sleep: untilWoken };
    alpha = await startAgentIdentity({ ...common, agentId: a.agentId });
    beta = await startAgentIdentity({ ...common, agentId: b.agentId });
    expect(alpha.snapshot()).toMatchObject({
      spiffeId: `spiffe://${TRUST_DOMAIN}/agent/${a.agentId}`,
      keyResidency: "bound",
    });

    const clients = new RelyingParty({
      bundle: env.ca.bundlePem,
      trustDomain: TRUST_DOMAIN,
      clock: systemClock,
      usage: "client",
    });
    const servers = new RelyingParty({
      bundle: env.ca.bundlePem,
      trustDomain: TRUST_DOMAIN,
      clock: systemClock,
      usage: "server",
    });
    server = createServer(
      { ...alpha.tlsOptions(), requestCert: true, rejectUnauthorized: true },
      (socket) => {
        // The server authorises by owner: only beta's owner may talk to it.
        const peer = clients.verifySocket(socket);
        if (peer.ownerId !== b.ownerId) return socket.destroy();
        socket.write(`${JSON.stringify(peer)}\n`);
        socket.on("data", (d) => socket.write(d));
      },
    );
    alpha.bindServer(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const port = (server.address() as AddressInfo).port;

    const handshake = async () => {
      const s = connect({
        host: "127.0.0.1",
        port,
        secureContext: beta.secureContext(),
        checkServerIdentity: servers.checkServerIdentity((p) =>
          p.agentId === a.agentId ? undefined : new Error(`not alpha: ${p.spiffeId}`),
        ),
      });
      await once(s, "secureConnect");
      const [line] = (await once(s, "data")) as [Buffer];
      const seenByServer = JSON.parse(line.toString().trim()) as PeerIdentity;
      const serverCert = s.getPeerX509Certificate()!;
      return { s, seenByServer, serverSerial: serverCert.serialNumber.toLowerCase() };
    };

    const first = await handshake();
    expect(first.seenByServer).toMatchObject({
      spiffeId: `spiffe://${TRUST_DOMAIN}/agent/${b.agentId}`,
      agentId: b.agentId,
      ownerId: b.ownerId,
      deviceId: state.deviceId,
      attestationFormat: "tpm-quote",
      keyResidency: "bound",
    });
    expect(first.serverSerial).toBe(alpha.snapshot().serial);
    expect(first.seenByServer.serial).toBe(beta.snapshot().serial);

    const serials = { alpha: new Set([alpha.snapshot().serial]), beta: new Set([beta.snapshot().serial]) };
    for (let round = 0; round < 2; round++) {
      const rotated = Promise.all([once(alpha, "rotated"), once(beta, "rotated")]);
      alpha.renewNow();
      beta.renewNow();
      const [[snapA], [snapB]] = (await rotated) as [[{ serial: string }], [{ serial: string }]];
      serials.alpha.add(snapA.serial);
      serials.beta.add(snapB.serial);
      const next = await handshake();
      expect(next.serverSerial).toBe(snapA.serial);
      expect(next.seenByServer.serial).toBe(snapB.serial);
      next.s.destroy();
    }
    expect(serials.alpha.size).toBe(3);
    expect(serials.beta.size).toBe(3);

    // The connection made before both rotations still carries data.
    first.s.write("still here\n");
    const [echo] = (await once(first.s, "data")) as [Buffer];
    expect(echo.toString()).toBe("still here\n");
    first.s.destroy();
  });
});

describe("the renewal loop under an injected clock", () => {
  it.each(["bound", "tpm"] as const)(
    "%s keys: renewed before every expiry across more than three lifetimes",
    async (mode) => {
      const agent = await seedAgentOnDevice(env.ca, state.deviceId);
      // The CA's own clock is the agent's: each sleep moves both, so renewals happen at the
      // CA's notion of half-life without waiting in real time.
      const clock: ManualClock = env.ca.clock;
      const start = clock.now();
      const issuer = new Issuer({
        tpm: env.tpm,
        state,
        client: () => env.client,
        agentId: agent.agentId,
        mode,
      });
      const out = mkdtempSync(join(env.work, `loop-${mode}-`));
      const got: Array<{ at: number; cert: Issued }> = [];
      const renewer = new Renewer({
        issue: () => issuer.issue(),
        onIssued: async (cert) => {
          got.push({ at: clock.now(), cert });
          await writeIssued(out, cert);
        },
        clock,
        random: seededRandom(`loop-${mode}`),
        sleep: async (ms) => clock.advance(ms),
        maxIssuances: 8,
      });
      expect(await renewer.run()).toEqual({ reason: "done", issued: 8 });
      // 30 s, less the milliseconds X.509 times cannot hold.
      const lifetime = 30_000;
      expect(Date.parse(got[0]!.cert.notAfter) - got[0]!.at).toBeGreaterThan(lifetime - 1000);
      expect(clock.now() - start).toBeGreaterThan(3 * lifetime);
      for (let i = 1; i < got.length; i++) {
        const prevExpiry = Date.parse(got[i - 1]!.cert.notAfter);
        const left = prevExpiry - got[i]!.at;
        // Renewed at 45-50% of the remaining life: never late, never needlessly early.
        expect(left).toBeGreaterThanOrEqual(0.5 * (lifetime - 1000));
        expect(left).toBeLessThanOrEqual(0.55 * lifetime);
        expect(got[i]!.cert.serial).not.toBe(got[i - 1]!.cert.serial);
        expect(got[i]!.cert.keyResidency).toBe(mode);
      }
    },
  );
});

describe("trust bundle changes", () => {
  it("the issuance answer's unsigned bundle is never trusted: bundle.pem and the CA's TLS trust come from the verified /v1/bundle", async () => {
    const { readFileSync, writeFileSync } = await import("node:fs");
    const { AgentTrust, CaSession, INITIAL_TRUST_FILE, readCaTrust } = await import(
      "../../src/agent/index.js"
    );
    const agent = await seedAgentOnDevice(env.ca, state.deviceId);
    const dir = mkdtempSync(join(env.work, "bundle-"));
    const sdir = mkdtempSync(join(env.work, "bundle-state-"));
    writeFileSync(join(sdir, INITIAL_TRUST_FILE), env.ca.rootPem, { mode: 0o600 });
    const lines: string[] = [];
    const trust = await AgentTrust.open(sdir, (_l, m) => lines.push(m));
    const session = new CaSession({ url: env.ca.url, initialTrust: trust.initialPem });
    const issuer = new Issuer({
      tpm: env.tpm,
      state,
      client: () => session.client(),
      agentId: agent.agentId,
      mode: "bound",
    });
    // From the third issuance on, the answer's own (unsigned) bundle carries a stranger's root:
    // the agent must ignore it.
    const other = await startTestCa();
    const strangerRoot = other.rootPem;
    await other.close();
    let n = 0;
    const renewer = new Renewer({
      issue: async () => {
        const r = await trust.refresh(session.client(), env.ca.clock.now());
        if (r.status === "accepted") session.updateBundle(trust.trustedPem);
        const c = await issuer.issue();
        return ++n >= 3 ? { ...c, bundle: c.bundle + strangerRoot } : c;
      },
      onIssued: (c) => writeIssued(dir, c, { bundle: trust.pem }),
      clock: env.ca.clock,
      random: seededRandom("bundle"),
      sleep: async (ms) => env.ca.clock.advance(ms),
      log: (_l, m) => lines.push(m),
      maxIssuances: 4,
    });
    expect((await renewer.run()).reason).toBe("done");
    expect(readFileSync(join(dir, "bundle.pem"), "utf8")).toBe(env.ca.bundlePem);
    expect(await readCaTrust(sdir)).not.toContain(strangerRoot.trim());
    expect(session.trust).not.toContain(strangerRoot.trim());
    expect(lines.filter((l) => l.startsWith("trust bundle accepted")).length).toBe(1);
    expect(lines.filter((l) => l.startsWith("certificate ")).length).toBe(4);
    session.close();
  });
});

describe("RelyingParty", () => {
  it("says who a peer is, and refuses another CA's certificate, an expired one and another trust domain", async () => {
    const agent = await seedAgentOnDevice(env.ca, state.deviceId);
    const issuer = new Issuer({
      tpm: env.tpm,
      state,
      client: () => env.client,
      agentId: agent.agentId,
      mode: "tpm",
    });
    const cert = await issuer.issue();
    const rp = new RelyingParty({ bundle: env.ca.bundlePem, trustDomain: TRUST_DOMAIN, clock: env.ca.clock });
    expect(rp.verify(cert.certificate, cert.chain)).toEqual({
      spiffeId: `spiffe://${TRUST_DOMAIN}/agent/${agent.agentId}`,
      agentId: agent.agentId,
      ownerId: agent.ownerId,
      deviceId: state.deviceId,
      attestationFormat: "tpm-certify",
      keyResidency: "tpm",
      serial: cert.serial,
      notAfter: new Date(Date.parse(cert.notAfter)).toISOString(),
    });
    // The bundle holds the intermediate, so the leaf alone verifies too.
    expect(rp.verify(cert.certificate).agentId).toBe(agent.agentId);

    const other = await startTestCa();
    try {
      const stranger = await other.seedAgent();
      const { res } = await issueVia(other, stranger);
      expect(res.status, res.text).toBe(201);
      const foreign = res.json as { certificate: string; chain: string[] };
      expect(() => rp.verify(foreign.certificate, foreign.chain)).toThrow(
        expect.objectContaining({ code: "peer.untrusted" }),
      );
      // Its own CA's relying party accepts it: the refusal is about trust, not shape.
      const otherRp = new RelyingParty({
        bundle: other.bundlePem,
        trustDomain: TRUST_DOMAIN,
        clock: other.clock,
      });
      expect(otherRp.verify(foreign.certificate, foreign.chain)).toMatchObject({
        attestationFormat: "test-signed",
      });
    } finally {
      await other.close();
    }

    const later = new ManualClock(Date.parse(cert.notAfter) + 1);
    expect(() =>
      new RelyingParty({ bundle: env.ca.bundlePem, trustDomain: TRUST_DOMAIN, clock: later }).verify(
        cert.certificate,
      ),
    ).toThrow(expect.objectContaining({ code: "peer.expired" }));
    expect(() =>
      new RelyingParty({ bundle: env.ca.bundlePem, trustDomain: "example.org", clock: env.ca.clock }).verify(
        cert.certificate,
      ),
    ).toThrow(expect.objectContaining({ code: "peer.invalid" }));
    // A CA certificate is not a peer.
    expect(() => rp.verify(cert.chain[0]!)).toThrow(expect.objectContaining({ code: "peer.invalid" }));
  });
});
