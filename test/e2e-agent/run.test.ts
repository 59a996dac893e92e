import { createPrivateKey, X509Certificate } from "node:crypto";
import { existsSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type EnrolmentState, ensureEnrolled } from "../../src/agent/index.js";
import { loadConfig } from "../../src/config/index.js";
import { EvidenceRegistry } from "../../src/evidence/registry.js";
import { tpmFormats } from "../../src/evidence/tpm-formats.js";
import { systemClock, systemRandom } from "../../src/runtime/clock.js";
import { startServer } from "../../src/server/start.js";
import { TPM_HT } from "../../src/tpm/client/index.js";
import { publicSpkiDer } from "../../src/tpm/index.js";
import { findMayflyAssurance } from "../../src/x509/index.js";
import { mayfly } from "../helpers/cli.js";
import { seedAgentOnDevice } from "../helpers/seed-agent.js";
import { type AgentEnv, spawnMayfly, startAgentEnv } from "./helpers.js";

// `mayfly agent run` as a separate process against a real CA and swtpm: files written
// atomically with the right modes, renewals one after another (30 s certificates renewed at
// 2% of their remaining life, so a run takes seconds), --exec after each rotation, a TPM-resident
// key at a persistent handle, and each terminal denial stopping the agent with its exit code.

// Separate processes and a shared two-core machine: generous limits, no timing assertions.
vi.setConfig({ testTimeout: 120_000 });

let env: AgentEnv;
let state: EnrolmentState;
let stateDir: string;
beforeAll(async () => {
  env = await startAgentEnv("e2e-agent-run");
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

const mode = (p: string) => statSync(p).mode & 0o777;
const run = (agentId: string, out: string, ...extra: string[]) => [
  "agent",
  "run",
  "--agent",
  agentId,
  "--out",
  out,
  "--state",
  stateDir,
  ...extra,
];

describe("mayfly agent run", () => {
  it("bound keys: renews again and again, files replaced whole (0600 key), --exec after each rotation", async () => {
    const agent = await seedAgentOnDevice(env.ca, state.deviceId);
    const out = join(env.work, "bound");
    const hookLog = join(env.work, "bound-hook.log");
    const p = spawnMayfly(
      run(
        agent.agentId,
        out,
        "--key",
        "bound",
        "--renew-at",
        "0.02",
        "--jitter",
        "0",
        "--exec",
        `echo "$MAYFLY_SERIAL $MAYFLY_KEY_RESIDENCY $MAYFLY_KEY_FILE" >> ${hookLog}`,
      ),
    );
    // A reader polling the files while the agent rewrites them must never see half a file.
    const seen = new Set<string>();
    let torn = 0;
    let reading = true;
    const reader = (async () => {
      while (reading) {
        if (existsSync(join(out, "cert.pem"))) {
          try {
            seen.add(new X509Certificate(readFileSync(join(out, "cert.pem"))).serialNumber);
            createPrivateKey(readFileSync(join(out, "key.pem")));
          } catch {
            torn++;
          }
        }
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    await p.waitFor(/--exec ran/, 4);
    reading = false;
    await reader;
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(p.stderr()).toMatch(/stopping \(signal\)/);
    expect(torn).toBe(0);
    expect(seen.size).toBeGreaterThanOrEqual(3);

    const hooks = readFileSync(hookLog, "utf8").trim().split("\n");
    expect(hooks.length).toBeGreaterThanOrEqual(4);
    expect(new Set(hooks.map((l) => l.split(" ")[0])).size).toBe(hooks.length);
    for (const l of hooks) expect(l).toMatch(new RegExp(`^[0-9a-f]+ bound ${join(out, "key.pem")}$`));
    expect(p.stderr()).toMatch(/certificate [0-9a-f]+ \(bound key\) valid until \S+; next renewal in \d/);

    // The files: a matching pair, the chain to the bundle, modes, no temporaries left behind.
    const cert = new X509Certificate(readFileSync(join(out, "cert.pem")));
    const key = createPrivateKey(readFileSync(join(out, "key.pem")));
    expect(cert.checkPrivateKey(key)).toBe(true);
    expect(hooks.at(-1)!.split(" ")[0]).toBe(cert.serialNumber.toLowerCase());
    const chain = new X509Certificate(readFileSync(join(out, "chain.pem")));
    expect(cert.verify(chain.publicKey)).toBe(true);
    expect(readFileSync(join(out, "bundle.pem"), "utf8")).toBe(env.ca.bundlePem);
    expect(mode(join(out, "key.pem"))).toBe(0o600);
    expect(mode(join(out, "cert.pem"))).toBe(0o644);
    expect(mode(out)).toBe(0o700);
    expect(readdirSync(out).sort()).toEqual(["bundle.pem", "cert.pem", "chain.pem", "key.pem"]);
    expect(findMayflyAssurance(cert.raw)).toMatchObject({
      agentId: agent.agentId,
      keyResidency: "bound",
      attestationFormat: "tpm-quote",
    });
    // The trust bundle the CA sent is kept beside the state for the CA's TLS.
    expect(mode(join(stateDir, "bundle.pem"))).toBe(0o600);
  });

  it("tpm keys: made in the TPM, persisted at key.handle, alternating within the agent's own pair of handles", async () => {
    const agent = await seedAgentOnDevice(env.ca, state.deviceId);
    const out = join(env.work, "tpm");
    for (const expected of ["0x81000100", "0x81000101", "0x81000100"]) {
      const r = await mayfly(run(agent.agentId, out, "--key", "tpm", "--once"));
      expect(r.code, r.stderr).toBe(0);
      expect(readFileSync(join(out, "key.handle"), "utf8")).toBe(`${expected}\n`);
      expect(r.stderr).toContain(`the key lives in the TPM at ${expected} (key.handle)`);
      expect(existsSync(join(out, "key.pem"))).toBe(false);
      const cert = new X509Certificate(readFileSync(join(out, "cert.pem")));
      expect(findMayflyAssurance(cert.raw)).toMatchObject({
        keyResidency: "tpm",
        attestationFormat: "tpm-certify",
      });
      // The certificate's key is the one at the handle: its public part is all that ever left the TPM.
      const inTpm = publicSpkiDer((await env.tpm.readPublic(Number(expected))).public);
      expect(cert.publicKey.export({ type: "spki", format: "der" }).equals(inTpm)).toBe(true);
    }
    // A second agent on the device gets its own pair: the first one's keys stay where they are.
    const second = await seedAgentOnDevice(env.ca, state.deviceId);
    const out2 = join(env.work, "tpm-second");
    const r2 = await mayfly(run(second.agentId, out2, "--key", "tpm", "--once"));
    expect(r2.code, r2.stderr).toBe(0);
    expect(readFileSync(join(out2, "key.handle"), "utf8")).toBe("0x81000102\n");
    expect(readFileSync(join(stateDir, "key-handles", "0x81000100"), "utf8")).toBe(`${agent.agentId}\n`);
    expect(readFileSync(join(stateDir, "key-handles", "0x81000102"), "utf8")).toBe(`${second.agentId}\n`);
    expect(mode(join(stateDir, "key-handles", "0x81000102"))).toBe(0o600);
    const persistent = await env.tpm.listHandles(TPM_HT.PERSISTENT);
    expect(persistent).toEqual(expect.arrayContaining([0x81000100, 0x81000101, 0x81000102, 0x81010002]));
    const first = new X509Certificate(readFileSync(join(out, "cert.pem")));
    const stillThere = publicSpkiDer((await env.tpm.readPublic(0x81000100)).public);
    expect(first.publicKey.export({ type: "spki", format: "der" }).equals(stillThere)).toBe(true);
    expect(await env.tpm.listHandles(TPM_HT.TRANSIENT)).toEqual([]);
  });

  it("auto: a profile without TPM-resident keys falls back to bound keys", async () => {
    const agent = await seedAgentOnDevice(env.ca, state.deviceId, { agent: { profile: "bound-only" } });
    const out = join(env.work, "auto");
    const r = await mayfly(run(agent.agentId, out, "--once"));
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(
      /does not allow TPM-resident keys for this agent \(attestation\.(format|residency)_not_allowed\): using bound keys/,
    );
    expect(existsSync(join(out, "key.pem"))).toBe(true);
  });

  it.each([
    ["owner.inactive", 10, { owner: { status: "deprovisioned" } }],
    ["agent.retired", 11, { agent: { status: "retired" } }],
    ["agent.expired", 13, { agent: { expiresAt: 1 } }],
    ["agent.inactive", 14, { agent: { status: "suspended" } }],
  ] as const)(
    "a terminal denial (%s) stops the agent with exit %i and says why",
    async (code, exit, over) => {
      const agent = await seedAgentOnDevice(env.ca, state.deviceId, over as never);
      const r = await mayfly(run(agent.agentId, join(env.work, `denied-${code}`), "--key", "bound"));
      expect(r.code, r.stderr).toBe(exit);
      expect(r.stderr).toContain(`renewal denied: ${code}: `);
      expect(r.stderr).toMatch(
        new RegExp(`mayfly agent: stopped: ${code.replace(".", "\\.")}: .* \\(exit ${exit}\\)\\n$`),
      );
    },
  );

  it("an unenrolled device stops its agents with exit 12", async () => {
    const agent = await seedAgentOnDevice(env.ca, state.deviceId);
    const at = env.ca.clock.now();
    await env.ca.running.store.tx((tx) => tx.setDeviceStatus(state.deviceId, "unenrolled", at));
    try {
      const r = await mayfly(run(agent.agentId, join(env.work, "unenrolled"), "--key", "bound"));
      expect(r.code, r.stderr).toBe(12);
      expect(r.stderr).toMatch(/stopped: device\.unenrolled: .* \(exit 12\)/);
    } finally {
      await env.ca.running.store.tx((tx) => tx.setDeviceStatus(state.deviceId, "active", at));
    }
  });

  it("an owner who leaves mid-run: the running agent stops at its next renewal with exit 10", async () => {
    const agent = await seedAgentOnDevice(env.ca, state.deviceId);
    const p = spawnMayfly(
      run(agent.agentId, join(env.work, "leaver"), "--key", "bound", "--renew-at", "0.02", "--jitter", "0"),
    );
    await p.waitFor(/next renewal in/, 1);
    await env.ca.running.store.tx(async (tx) => {
      const o = (await tx.getOwner(agent.ownerId))!;
      await tx.updateOwner({ ...o, status: "deprovisioned", updatedAt: env.ca.clock.now() });
    });
    expect(await p.exited).toBe(10);
    expect(p.stderr()).toMatch(/renewal denied: owner\.inactive: .*the agent's owner is no longer active/);
    // The last good certificate stays where it was.
    expect(existsSync(join(env.work, "leaver", "cert.pem"))).toBe(true);
  });

  it("a CA that cannot be reached: retries with growing waits and clear lines, until stopped", async () => {
    const agent = await seedAgentOnDevice(env.ca, state.deviceId);
    const { cpSync, readFileSync: rf, writeFileSync } = await import("node:fs");
    const dead = join(env.work, "state-dead-ca");
    cpSync(stateDir, dead, { recursive: true });
    const s = JSON.parse(rf(join(dead, "state.json"), "utf8"));
    writeFileSync(join(dead, "state.json"), JSON.stringify({ ...s, caUrl: "https://127.0.0.1:1" }), {
      mode: 0o600,
    });
    const args = run(agent.agentId, join(env.work, "dead"), "--key", "bound", "--backoff-max", "1");
    args[args.indexOf("--state") + 1] = dead;
    const p = spawnMayfly(args);
    await p.waitFor(/renewal failed \(ca\.unreachable: .*\); retry \d+ in [\d.]+ s; no certificate yet/, 3);
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
    expect(p.stderr()).toMatch(/retry 1 in /);
    expect(p.stderr()).toMatch(/retry 3 in /);
  });

  it("a CA restart is survived: renewals fail, back off, and resume against the restarted CA", async () => {
    // The CA's clock moves only when told: bring it to now so certificates are current.
    env.ca.clock.set(Date.now());
    const agent = await seedAgentOnDevice(env.ca, state.deviceId);
    const p = spawnMayfly(
      run(
        agent.agentId,
        join(env.work, "restart"),
        "--key",
        "bound",
        "--renew-at",
        "0.02",
        "--jitter",
        "0",
        "--backoff-max",
        "1",
      ),
    );
    await p.waitFor(/next renewal in/, 1);
    const port = env.ca.running.port;
    const dir = env.ca.dir;
    let restarted: Awaited<ReturnType<typeof startServer>> | null = null;
    await env.ca.running.close();
    // The harness closes what it started; from now on that is the restarted server, if any.
    env.ca.close = async () => {
      await restarted?.close();
      rmSync(dir, { recursive: true, force: true });
    };
    await p.waitFor(
      /renewal failed \(ca\.unreachable: .*\); retry \d+ in [\d.]+ s; (current certificate valid for|the current certificate has EXPIRED)/,
      2,
    );
    // The same data directory and port: the CA comes back with its store, keys and CA.
    const rc = await loadConfig(join(env.ca.dir, "mayfly.yaml"), {
      MAYFLY_DATA_DIR: join(env.ca.dir, "data"),
      MAYFLY_LISTEN: `127.0.0.1:${port}`,
    });
    restarted = await startServer(rc, {
      clock: env.ca.clock,
      random: systemRandom,
      log: pino({ level: "silent" }),
      evidence: new EvidenceRegistry(tpmFormats()),
    });
    env.ca.running = restarted;
    const issuedBefore = (p.stderr().match(/next renewal in/g) ?? []).length;
    await p.waitFor(/next renewal in/, issuedBefore + 1);
    p.child.kill("SIGTERM");
    expect(await p.exited).toBe(0);
  });

  it("usage errors exit 2; running without an enrolment says what to run (exit 16)", async () => {
    const bad = await mayfly(run("a", join(env.work, "x"), "--renew-at", "2"));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--renew-at must be a number from 0\.001 to 0\.999/);
    const none = await mayfly([
      "agent",
      "run",
      "--agent",
      "a",
      "--out",
      join(env.work, "y"),
      "--state",
      join(env.work, "nothing"),
    ]);
    expect(none.code).toBe(16);
    expect(none.stderr).toMatch(/no enrolment in .*nothing: run "mayfly agent enrol/);
    const help = await mayfly(["agent", "run", "--help"]);
    expect(help.code).toBe(0);
    for (const s of [
      "--agent <id>",
      "--out <dir>",
      "--exec <command>",
      "--key <mode>",
      "owner.inactive",
      "10",
    ]) {
      expect(help.stdout).toContain(s);
    }
  });
});
