import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { createServer as createHttpsServer, type Server } from "node:https";
import { type AddressInfo, createServer as createNetServer } from "node:net";
import { join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  type AgentIdentity,
  type EnrolmentState,
  ensureEnrolled,
  Issuer,
  RelyingParty,
  type Sleep,
  startAgentIdentity,
  writeIssued,
} from "../../src/agent/index.js";
import { systemClock, systemRandom } from "../../src/runtime/clock.js";
import { ensureDebianPackages } from "../helpers/debian.js";
import { seedAgentOnDevice } from "../helpers/seed-agent.js";
import { type AgentEnv, startAgentEnv } from "./helpers.js";

// The files `mayfly agent run` writes, used by other TLS stacks: openssl s_server -Verify and
// s_client with a bound key, curl --cert against a Node https server that authorises with the
// relying-party helper, and a TPM-resident key used by openssl through the tpm2 provider
// (Debian tpm2-openssl) by its persistent handle, so the private key never leaves the TPM:
// openssl s_server and s_client with it, through tpm2-abrmd as the resource manager a real
// host has in /dev/tpmrm0 (the provider keeps more objects loaded than swtpm's three slots).

// Separate processes and a shared two-core machine: generous limits, no timing assertions.
vi.setConfig({ testTimeout: 120_000 });

let env: AgentEnv;
let state: EnrolmentState;
const dirs = { bound: "", tpm: "" };
let tpmHandle = "";
let ids: { bound: string; tpm: string; node: string; owner: string };
let node: AgentIdentity;

beforeAll(async () => {
  ensureDebianPackages(["tpm2-openssl", "tpm2-abrmd", "libtss2-tcti-tabrmd0", "dbus-daemon"]);
  // Certificates that outlast the file on a busy machine: the CA's clock stands still.
  env = await startAgentEnv("e2e-agent-interop", { lifetime: "10m", maxLifetime: "15m" });
  const stateDir = join(env.work, "state");
  ({ state } = await ensureEnrolled({
    tpm: env.tpm,
    tpmSpec: env.tpmSpec,
    ca: env.client,
    stateDir,
    caTrust: env.ca.rootPem,
    clock: systemClock,
  }));
  const bound = await seedAgentOnDevice(env.ca, state.deviceId);
  const tpmAgent = await seedAgentOnDevice(env.ca, state.deviceId);
  const nodeAgent = await seedAgentOnDevice(env.ca, state.deviceId);
  ids = { bound: bound.agentId, tpm: tpmAgent.agentId, node: nodeAgent.agentId, owner: bound.ownerId };
  for (const [mode, agentId] of [
    ["bound", bound.agentId],
    ["tpm", tpmAgent.agentId],
  ] as const) {
    dirs[mode] = join(env.work, mode);
    const issuer = new Issuer({ tpm: env.tpm, state, client: () => env.client, agentId, mode });
    // bundle.pem comes from a verified bundle only (AgentTrust); here, the CA's own.
    await writeIssued(dirs[mode], await issuer.issue(), { bundle: env.ca.bundlePem });
  }
  tpmHandle = readFileSync(join(dirs.tpm, "key.handle"), "utf8").trim();
  const never: Sleep = (_ms, signal) => new Promise((r) => signal.addEventListener("abort", () => r()));
  node = await startAgentIdentity({
    tpm: env.tpm,
    stateDir,
    agentId: nodeAgent.agentId,
    clock: systemClock,
    random: systemRandom,
    sleep: never,
  });
}, 90_000);
afterAll(async () => {
  await node?.stop();
  for (const c of [abrmd, dbus]) if (c && c.exitCode === null) c.kill();
  await env?.close();
});

let dbus: ChildProcess | null = null;
let abrmd: ChildProcess | null = null;
let tabrmdEnv: Record<string, string> = {};

/** A private D-Bus session bus and tpm2-abrmd on the test swtpm (started once, on first use). */
async function resourceManager(): Promise<Record<string, string>> {
  if (abrmd) return tabrmdEnv;
  const bus = `unix:path=${join(env.work, "dbus.sock")}`;
  dbus = spawn("dbus-daemon", ["--session", "--nofork", `--address=${bus}`], { stdio: "ignore" });
  for (let i = 0; i < 100 && !existsSync(join(env.work, "dbus.sock")); i++)
    await new Promise((r) => setTimeout(r, 50));
  const name = `com.intel.tss2.Tabrmd.mayfly${process.pid}`;
  const s = env.sw.server;
  const tcti = "path" in s ? `swtpm:path=${s.path}` : `swtpm:host=${s.host},port=${s.port}`;
  abrmd = spawn("tpm2-abrmd", ["--session", "--allow-root", `--dbus-name=${name}`, `--tcti=${tcti}`], {
    env: { ...process.env, DBUS_SESSION_BUS_ADDRESS: bus },
    stdio: "ignore",
  });
  tabrmdEnv = { DBUS_SESSION_BUS_ADDRESS: bus, TPM2OPENSSL_TCTI: `tabrmd:bus_name=${name},bus_type=session` };
  // Ready when a provider operation through it succeeds.
  for (let i = 0; i < 50; i++) {
    const probe = await run("openssl", ["list", "-provider", "tpm2", "-key-managers"], "", tabrmdEnv);
    if (probe.code === 0 && !/error/i.test(probe.stderr)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return tabrmdEnv;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createNetServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as AddressInfo).port;
      s.close(() => resolve(p));
    });
  });
}

/** The tpm2 provider reaches the test swtpm through its TCTI. */
const tpm2Env = () => {
  const s = env.sw.server;
  return { TPM2OPENSSL_TCTI: "path" in s ? `swtpm:path=${s.path}` : `swtpm:host=${s.host},port=${s.port}` };
};
const files = (dir: string) => ({
  cert: join(dir, "cert.pem"),
  chain: join(dir, "chain.pem"),
  bundle: join(dir, "bundle.pem"),
  key: join(dir, "key.pem"),
});

async function startSServer(args: string[], extraEnv: Record<string, string> = {}) {
  const port = await freePort();
  const child = spawn("openssl", ["s_server", "-accept", `127.0.0.1:${port}`, "-naccept", "1", ...args], {
    env: { ...process.env, ...extraEnv },
    stdio: ["pipe", "pipe", "pipe"],
  });
  let out = "";
  child.stdout.on("data", (b: Buffer) => {
    out += b.toString();
  });
  child.stderr.on("data", (b: Buffer) => {
    out += b.toString();
  });
  for (let i = 0; i < 100 && !out.includes("ACCEPT"); i++) await new Promise((r) => setTimeout(r, 50));
  if (!out.includes("ACCEPT")) throw new Error(`s_server did not start:\n${out}`);
  return { port, child, output: () => out };
}

/** s_server -naccept 1 exits after its one connection; a failed client leaves it waiting. */
async function exited(child: ChildProcess, ms = 20_000): Promise<void> {
  if (child.exitCode !== null) return;
  await Promise.race([once(child, "exit"), new Promise((r) => setTimeout(r, ms))]);
}

function stop(child: ChildProcess) {
  if (child.exitCode === null) child.kill();
}

function run(cmd: string, args: string[], input: string, extraEnv: Record<string, string> = {}) {
  return new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    const p = execFile(
      cmd,
      args,
      { env: { ...process.env, ...extraEnv }, encoding: "utf8" },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
    p.stdin?.end(input);
  });
}

describe("the written files with other TLS stacks", () => {
  it("openssl s_server -Verify and s_client, each with a bound agent's files, verify each other", async () => {
    const f = files(dirs.bound);
    const srv = await startSServer([
      "-cert",
      f.cert,
      "-key",
      f.key,
      "-cert_chain",
      f.chain,
      "-CAfile",
      f.bundle,
      "-Verify",
      "3",
      "-verify_return_error",
    ]);
    try {
      const r = await run(
        "openssl",
        [
          "s_client",
          "-connect",
          `127.0.0.1:${srv.port}`,
          "-cert",
          f.cert,
          "-key",
          f.key,
          "-cert_chain",
          f.chain,
          "-CAfile",
          f.bundle,
          "-verify_return_error",
          "-brief",
        ],
        "",
      );
      expect(r.stderr).toMatch(/Verification: OK/);
      await exited(srv.child);
      expect(srv.output()).toMatch(/verify depth is 3, must return a certificate/);
      expect(srv.output()).toMatch(/depth=0 \s*\n?.*verify return:1|Client certificate|ACCEPT/);
      expect(srv.output()).not.toMatch(/verify error/);
    } finally {
      stop(srv.child);
    }
  });

  it("curl --cert with a bound agent's files, to a Node https server that authorises with the relying-party helper", async () => {
    const rp = new RelyingParty({
      bundle: env.ca.bundlePem,
      trustDomain: "mayfly.internal",
      clock: systemClock,
      usage: "client",
    });
    const server: Server = createHttpsServer(
      { ...node.tlsOptions(), requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        try {
          const peer = rp.verifySocket(req.socket as TLSSocket);
          const allowed = peer.ownerId === ids.owner;
          res
            .writeHead(allowed ? 200 : 403, { "content-type": "application/json" })
            .end(JSON.stringify(peer));
        } catch (e) {
          res.writeHead(403).end(String(e));
        }
      },
    );
    node.bindServer(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    try {
      const f = files(dirs.bound);
      // curl checks host names, which Mayfly certificates do not carry (they name a SPIFFE
      // ID): -k skips only that side; the server still verifies curl's certificate fully.
      const r = await run(
        "curl",
        [
          "-sS",
          "-k",
          "--cert",
          f.cert,
          "--key",
          f.key,
          `https://127.0.0.1:${(server.address() as AddressInfo).port}/`,
        ],
        "",
      );
      expect(r.stderr).toBe("");
      expect(JSON.parse(r.stdout)).toMatchObject({
        agentId: ids.bound,
        ownerId: ids.owner,
        keyResidency: "bound",
        attestationFormat: "tpm-quote",
      });
      // Without a client certificate the handshake itself fails.
      const anon = await run(
        "curl",
        ["-sS", "-k", `https://127.0.0.1:${(server.address() as AddressInfo).port}/`],
        "",
      );
      expect(anon.code).not.toBe(0);
    } finally {
      server.close();
    }
  });

  it("a TPM-resident key signs for openssl through the tpm2 provider by its handle; the certificate verifies it", async () => {
    // A TLS server with the key (openssl s_server -provider tpm2 -key handle:…) needs a TPM
    // resource manager: the provider keeps digest sequences in the TPM, more than swtpm's
    // three object slots without one. /dev/tpmrm0 is one; here the signature itself is shown.
    const f = files(dirs.tpm);
    expect(tpmHandle).toMatch(/^0x8100010[01]$/);
    const digest = join(env.work, "digest.bin");
    const sig = join(env.work, "digest.sig");
    writeFileSync(digest, createHash("sha256").update("signed inside the TPM").digest());
    const signed = await run(
      "openssl",
      [
        "pkeyutl",
        "-provider",
        "tpm2",
        "-provider",
        "default",
        "-propquery",
        "?provider=tpm2",
        "-sign",
        "-inkey",
        `handle:${tpmHandle}`,
        "-in",
        digest,
        "-out",
        sig,
      ],
      "",
      tpm2Env(),
    );
    expect(signed.code, signed.stderr).toBe(0);
    const verified = await run(
      "openssl",
      ["pkeyutl", "-verify", "-certin", "-inkey", f.cert, "-in", digest, "-sigfile", sig],
      "",
    );
    expect(verified.stdout.trim()).toBe("Signature Verified Successfully");
    const rp = new RelyingParty({
      bundle: env.ca.bundlePem,
      trustDomain: "mayfly.internal",
      clock: systemClock,
    });
    expect(rp.verify(readFileSync(f.cert, "utf8"), [readFileSync(f.chain, "utf8")])).toMatchObject({
      agentId: ids.tpm,
      keyResidency: "tpm",
      attestationFormat: "tpm-certify",
      deviceId: state.deviceId,
    });
  });

  it("openssl s_server serves with the TPM-resident key by its handle; a Node agent checks its assurance", async () => {
    const f = files(dirs.tpm);
    const srv = await startSServer(
      [
        "-provider",
        "tpm2",
        "-provider",
        "default",
        "-propquery",
        "?provider=tpm2",
        "-key",
        `handle:${tpmHandle}`,
        "-cert",
        f.cert,
        "-cert_chain",
        f.chain,
        "-CAfile",
        f.bundle,
        "-Verify",
        "3",
        "-verify_return_error",
      ],
      await resourceManager(),
    );
    try {
      const rp = new RelyingParty({
        bundle: env.ca.bundlePem,
        trustDomain: "mayfly.internal",
        clock: systemClock,
        usage: "server",
      });
      const s = connect({
        host: "127.0.0.1",
        port: srv.port,
        secureContext: node.secureContext(),
        checkServerIdentity: rp.checkServerIdentity(),
      });
      await once(s, "secureConnect").catch((e: Error) => {
        throw new Error(`${e.message}; s_server said:\n${srv.output()}`);
      });
      expect(rp.verifySocket(s)).toMatchObject({
        agentId: ids.tpm,
        keyResidency: "tpm",
        attestationFormat: "tpm-certify",
        deviceId: state.deviceId,
      });
      s.end();
      await exited(srv.child);
      expect(srv.output()).toMatch(/depth=0 \n?verify return:1/);
      expect(srv.output()).not.toMatch(/verify error|:error:/);
    } finally {
      stop(srv.child);
    }
  });

  it("openssl s_client authenticates with the TPM-resident key by its handle to s_server -Verify", async () => {
    const b = files(dirs.bound);
    const t = files(dirs.tpm);
    const srv = await startSServer([
      "-cert",
      b.cert,
      "-key",
      b.key,
      "-cert_chain",
      b.chain,
      "-CAfile",
      b.bundle,
      "-Verify",
      "3",
      "-verify_return_error",
    ]);
    try {
      const r = await run(
        "openssl",
        [
          "s_client",
          "-provider",
          "tpm2",
          "-provider",
          "default",
          "-propquery",
          "?provider=tpm2",
          "-connect",
          `127.0.0.1:${srv.port}`,
          "-key",
          `handle:${tpmHandle}`,
          "-cert",
          t.cert,
          "-cert_chain",
          t.chain,
          "-CAfile",
          t.bundle,
          "-verify_return_error",
          "-brief",
        ],
        "",
        await resourceManager(),
      );
      expect(r.stderr).toMatch(/Verification: OK/);
      expect(r.code, r.stderr).toBe(0);
      await exited(srv.child);
      expect(srv.output()).toMatch(/depth=0 \n?verify return:1/);
      expect(srv.output()).not.toMatch(/verify error|:error:/);
    } finally {
      stop(srv.child);
    }
  });
});
