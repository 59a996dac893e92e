import { X509Certificate } from "node:crypto";
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  AgentTrust,
  type EnrolmentState,
  ensureEnrolled,
  HELD_TRUST_FILE,
  INITIAL_TRUST_FILE,
  LATEST_TRUST_FILE,
  RelyingParty,
  trustFromPem,
  writeBundleFile,
} from "../../src/agent/index.js";
import { rootActivate, rootPrepare } from "../../src/authority/rotation-root.js";
import { loadConfig } from "../../src/config/index.js";
import { systemClock, systemRandom } from "../../src/runtime/clock.js";
import { https } from "../helpers/https.js";
import { seedAgentOnDevice } from "../helpers/seed-agent.js";
import { startTestCa, type TestCa } from "../helpers/test-ca.js";
import { type AgentEnv, spawnMayfly, startAgentEnv } from "./helpers.js";

// The agent takes a trust bundle only when GET /v1/bundle verifies against the trust it holds
// (AgentTrust over verifyBundleUpdate). Unit level, with a stub in place of the CA client: a
// bundle signed by an unknown key, or tampered with, is refused with its code, and neither the
// held trust nor bundle.pem changes. End to end, `mayfly agent run` against a real CA: a held
// trust that did not sign the CA's bundle refuses it and keeps going; a root rotation mid-run
// (prepare, then activate) reaches bundle.pem and the agent keeps renewing under the new root.

vi.setConfig({ testTimeout: 120_000 });

const mode = (p: string) => statSync(p).mode & 0o777;
const bundleOf = async (ca: TestCa) => (await https(`${ca.url}/v1/bundle`, { ca: ca.rootPem })).json;

describe("AgentTrust (stub CA client)", () => {
  let a: TestCa;
  let b: TestCa;
  let work: string;
  beforeAll(async () => {
    [a, b] = await Promise.all([startTestCa(), startTestCa()]);
    work = mkdtempSync(join(tmpdir(), "mayfly-agent-trust-"));
  });
  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
    rmSync(work, { recursive: true, force: true });
  });

  it("accepts its CA's bundle, then refuses one signed by an unknown key and a tampered one: trust and bundle.pem unchanged", async () => {
    const stateDir = join(work, "state");
    const out = join(work, "out");
    mkdirSync(stateDir, { mode: 0o700 });
    writeFileSync(join(stateDir, INITIAL_TRUST_FILE), a.rootPem, { mode: 0o600 });
    const lines: string[] = [];
    const trust = await AgentTrust.open(stateDir, (level, m) => lines.push(`${level} ${m}`));
    expect(trust.pem).toBe("");

    const good = await bundleOf(a);
    const ok = await trust.refresh({ signedBundle: async () => good }, a.clock.now());
    expect(ok).toMatchObject({ status: "accepted", changed: true });
    expect(trust.pem).toBe(a.bundlePem);
    expect(await writeBundleFile(out, trust.pem)).toBe(true);
    expect(mode(join(stateDir, HELD_TRUST_FILE))).toBe(0o600);
    expect(mode(join(stateDir, LATEST_TRUST_FILE))).toBe(0o600);
    const savedTrust = readFileSync(join(stateDir, HELD_TRUST_FILE), "utf8");
    const held = trust.held;

    // Another CA's bundle: validly signed, by a key this agent does not trust.
    const stranger = await bundleOf(b);
    const r1 = await trust.refresh({ signedBundle: async () => stranger }, a.clock.now());
    expect(r1).toMatchObject({ status: "refused", code: "bundle.signer_unknown" });
    // The CA's own bundle with one more root slipped in after signing.
    const tampered = {
      ...(good as Record<string, unknown>),
      roots: [...(good as { roots: unknown[] }).roots, ...(stranger as { roots: unknown[] }).roots],
    };
    const r2 = await trust.refresh({ signedBundle: async () => tampered }, a.clock.now());
    expect(r2).toMatchObject({ status: "refused", code: "bundle.signature_invalid" });
    // A failed fetch is not a refusal, and not fatal either.
    const r3 = await trust.refresh(
      {
        signedBundle: async () => {
          throw new Error("connection refused");
        },
      },
      a.clock.now(),
    );
    expect(r3.status).toBe("unavailable");

    expect(trust.held).toEqual(held);
    expect(trust.pem).toBe(a.bundlePem);
    expect(await writeBundleFile(out, trust.pem)).toBe(false);
    expect(readFileSync(join(out, "bundle.pem"), "utf8")).toBe(a.bundlePem);
    expect(readFileSync(join(stateDir, HELD_TRUST_FILE), "utf8")).toBe(savedTrust);
    expect(
      lines.filter((l) => l.startsWith("warn trust bundle REFUSED: bundle.signer_unknown")),
    ).toHaveLength(1);
    expect(
      lines.filter((l) => l.startsWith("warn trust bundle REFUSED: bundle.signature_invalid")),
    ).toHaveLength(1);

    // A restart holds what was accepted, not the operator's initial roots.
    const again = await AgentTrust.open(stateDir);
    expect(again.held).toEqual(held);
    expect(again.pem).toBe(a.bundlePem);
    expect((await again.refresh({ signedBundle: async () => stranger }, a.clock.now())).status).toBe(
      "refused",
    );
  });
});

describe("mayfly agent run and the signed bundle (real CA, swtpm)", () => {
  let env: AgentEnv;
  let state: EnrolmentState;
  let stateDir: string;
  beforeAll(async () => {
    env = await startAgentEnv("e2e-agent-bundle", {
      extraConfig: "rotation:\n  auto: false\n  checkInterval: 1s\n  propagation: 1s\n",
    });
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

  it("a bundle not signed by the trust held is refused: bundle.pem untouched, the agent still renews", async () => {
    const agent = await seedAgentOnDevice(env.ca, state.deviceId);
    // The same enrolment, but the trust held is another CA's root (as if the CA's bundle were
    // signed by an unknown key); ca-bundle.pem still authenticates the CA's TLS.
    const other = await startTestCa();
    const strangerRoot = other.rootPem;
    await other.close();
    const sdir = join(env.work, "state-stranger");
    mkdirSync(sdir, { mode: 0o700 });
    for (const f of ["state.json", INITIAL_TRUST_FILE]) copyFileSync(join(stateDir, f), join(sdir, f));
    const t = trustFromPem(strangerRoot, "mayfly.internal");
    writeFileSync(
      join(sdir, HELD_TRUST_FILE),
      JSON.stringify({
        version: 1,
        trustDomain: "mayfly.internal",
        sequence: 0,
        roots: [{ id: t.roots[0]!.id, pem: strangerRoot }],
        pem: strangerRoot,
      }),
      { mode: 0o600 },
    );
    const out = join(env.work, "out-stranger");
    mkdirSync(out, { mode: 0o700 });
    writeFileSync(join(out, "bundle.pem"), strangerRoot);
    const p = spawnMayfly([
      "agent",
      "run",
      "--agent",
      agent.agentId,
      "--out",
      out,
      "--state",
      sdir,
      "--key",
      "bound",
      "--once",
    ]);
    expect(await p.exited, p.stderr()).toBe(0);
    expect(p.stderr()).toMatch(/trust bundle REFUSED: bundle\.signer_unknown/);
    expect(p.stderr()).toMatch(/certificate [0-9a-f]+ \(bound key\) valid until/);
    expect(readFileSync(join(out, "bundle.pem"), "utf8")).toBe(strangerRoot);
    expect(existsSync(join(sdir, LATEST_TRUST_FILE))).toBe(false);
  });

  it("a root rotation mid-run reaches bundle.pem (new root, then its intermediate) and renewals go on", async () => {
    const agent = await seedAgentOnDevice(env.ca, state.deviceId);
    const out = join(env.work, "out-rotation");
    const p = spawnMayfly([
      "agent",
      "run",
      "--agent",
      agent.agentId,
      "--out",
      out,
      "--state",
      stateDir,
      "--key",
      "bound",
      "--renew-at",
      "0.02",
      "--jitter",
      "0",
    ]);
    try {
      await p.waitFor(/certificate [0-9a-f]+ \(bound key\) valid until/, 2);
      expect(readFileSync(join(out, "bundle.pem"), "utf8")).toBe(env.ca.bundlePem);
      const oldRoot = new X509Certificate(env.ca.rootPem);

      const rc = await loadConfig(join(env.ca.dir, "mayfly.yaml"), {
        MAYFLY_DATA_DIR: join(env.ca.dir, "data"),
        MAYFLY_LISTEN: "127.0.0.1:0",
      });
      const deps = {
        store: env.ca.running.store,
        keys: env.ca.running.keys,
        clock: env.ca.clock,
        random: systemRandom,
        config: rc.config,
        actor: "cli",
      };
      await rootPrepare(deps);
      await env.ca.running.rotation.refresh();
      await p.waitFor(/trust bundle accepted: sequence \d+, signed by \S+, \S+; root [0-9a-f]+ added/);
      const roots = () =>
        (
          readFileSync(join(out, "bundle.pem"), "utf8").match(
            /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g,
          ) ?? []
        )
          .map((b) => new X509Certificate(b))
          .filter((c) => c.checkIssued(c));
      await p.waitFor(/the trust bundle changed: bundle\.pem updated/);
      expect(roots()).toHaveLength(2);
      const newRoot = roots().find((c) => c.fingerprint256 !== oldRoot.fingerprint256)!;

      await rootActivate(deps, { force: true });
      await env.ca.running.rotation.refresh();
      const accepted = (p.stderr().match(/trust bundle accepted/g) ?? []).length;
      await p.waitFor(/trust bundle accepted/, accepted + 1);
      const issued = (p.stderr().match(/certificate [0-9a-f]+ \(bound key\) valid until/g) ?? []).length;
      await p.waitFor(/certificate [0-9a-f]+ \(bound key\) valid until/, issued + 2);

      // The newest certificate chains to the new root through bundle.pem.
      const chain = readFileSync(join(out, "chain.pem"), "utf8");
      const intermediate = new X509Certificate(chain);
      expect(intermediate.checkIssued(newRoot)).toBe(true);
      const rp = new RelyingParty({
        bundle: readFileSync(join(out, "bundle.pem"), "utf8"),
        trustDomain: rc.config.ca.trustDomain,
        clock: env.ca.clock,
      });
      expect(rp.verify(readFileSync(join(out, "cert.pem"), "utf8"), [chain]).agentId).toBe(agent.agentId);
      expect(readFileSync(join(out, "bundle.pem"), "utf8")).toContain(chain.trim());
      expect(p.stderr()).not.toMatch(/REFUSED|renewal failed|renewal denied/);
    } finally {
      p.child.kill("SIGTERM");
      await p.exited;
    }
  });
});
