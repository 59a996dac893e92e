// `npm run demo`: the whole Mayfly idea in under a minute, on loopback, in a temp dir.
//
// A CA, an OpenID provider with a demo owner, a software TPM with EK certificates, device
// activation, two agents registered by their owner, their certificates, mTLS between them
// (each prints who the other is), a renewal, and then the owner leaves: the identity
// provider says so over SCIM and the next renewal is refused with owner.inactive.
//
// Real parts throughout: the CA is Mayfly's own server (HTTPS, SQLite), the identity
// provider is the `oidc-provider` package, the TPM is swtpm with certificates from a private
// "vendor" CA, and the agents are `mayfly agent enrol | run` (separate processes) and the
// Node library (`mayfly/agent`). Only the login page is answered by the script itself.

import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { once } from "node:events";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as createHttpsServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { connect, type TLSSocket } from "node:tls";
import { fileURLToPath } from "node:url";
import { pino } from "pino";
import {
  type AgentIdentity,
  openTpm,
  type PeerIdentity,
  RelyingParty,
  type RenewerResult,
  startAgentIdentity,
} from "../src/agent/index.js";
import { loadConfig } from "../src/config/index.js";
import { EvidenceRegistry } from "../src/evidence/registry.js";
import { tpmFormats } from "../src/evidence/tpm-formats.js";
import { systemClock, systemRandom } from "../src/runtime/clock.js";
import { type RunningServer, startServer } from "../src/server/start.js";

const REPO = join(dirname(fileURLToPath(import.meta.url)), "..");
const DEBIAN = ["swtpm", "swtpm-tools", "tpm2-tools", "libtss2-tcti-swtpm0"];
const TOOLS = ["swtpm", "swtpm_setup", "swtpm_ioctl", "tpm2_getrandom"];
const TRUST_DOMAIN = "mayfly.internal";
const t0 = performance.now();

let stepNo = 0;
const STEPS = 10;
function step(title: string): void {
  stepNo++;
  process.stdout.write(`\n[${stepNo}/${STEPS}] ${title}\n`);
}
const say = (line: string) => process.stdout.write(`      ${line}\n`);
const secs = () => `${((performance.now() - t0) / 1000).toFixed(1)} s`;

function have(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

/** The Debian packages for swtpm: installed when missing and root, else exactly what to run. */
function ensureTools(): void {
  const missing = TOOLS.filter((t) => !have(t));
  if (missing.length === 0) {
    say(`swtpm and tpm2-tools are installed`);
    return;
  }
  if (process.getuid?.() === 0 && have("apt-get")) {
    say(`installing Debian packages: ${DEBIAN.join(" ")}`);
    execFileSync("bash", [join(REPO, "scripts/ensure-deps.sh"), ...DEBIAN], { stdio: "inherit", cwd: REPO });
    return;
  }
  process.stdout.write(
    `\nThe demo needs a software TPM (missing: ${missing.join(", ")}). Install it with:\n\n` +
      `    sudo apt-get install -y ${DEBIAN.join(" ")}\n\nthen run npm run demo again.\n`,
  );
  process.exit(1);
}

const cleanups: Array<() => Promise<void> | void> = [];
async function cleanup(): Promise<void> {
  for (const c of cleanups.reverse()) {
    try {
      await c();
    } catch {
      // keep cleaning
    }
  }
}

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), "mayfly-demo-"));
  cleanups.push(() => rmSync(work, { recursive: true, force: true }));
  process.stdout.write(
    `Mayfly demo: an ephemeral CA for software agents. Everything runs on 127.0.0.1, in ${work}\n`,
  );

  step("Tools");
  ensureTools();

  step("A software TPM with endorsement-key certificates (swtpm)");
  // Imported late: the helpers need the tools checked above.
  const { Swtpm } = await import("../test/tpm/helpers/swtpm.js");
  const sw = await Swtpm.start({ manufacture: true });
  cleanups.push(() => sw.stop());
  const sock = (sw.server as { path: string }).path;
  const ekTrust = join(work, "ek-trust");
  mkdirSync(join(ekTrust, "roots"), { recursive: true });
  mkdirSync(join(ekTrust, "intermediates"), { recursive: true });
  copyFileSync(sw.caFiles.root, join(ekTrust, "roots", "swtpm-vendor-root.pem"));
  copyFileSync(sw.caFiles.intermediate, join(ekTrust, "intermediates", "swtpm-vendor-issuer.pem"));
  say(`swtpm at ${sock}; its EK certificates come from a private "vendor" CA the Mayfly CA will trust`);

  step('An identity provider (OpenID Connect) with a demo owner, "ada"');
  // oidc-provider warns about its in-memory store and Node 20 on stderr; neither matters here.
  const warn = console.warn;
  console.warn = (...a: unknown[]) => {
    if (!String(a[0]).startsWith("oidc-provider WARNING")) warn(...a);
  };
  const { startIdp, MAYFLY_CLIENT } = await import("../test/owners/helpers/idp.js");
  const idp = await startIdp();
  cleanups.push(() => idp.close());
  idp.accounts.set("ada", { email: "ada@example.test", name: "Ada Lovelace", groups: ["eng"] });
  say(`oidc-provider at ${idp.issuer}`);

  step("The Mayfly CA");
  const scimToken = systemRandom.bytes(32).toString("base64url");
  writeFileSync(join(work, "idp-ca.pem"), idp.caPem);
  writeFileSync(join(work, "scim-token"), `${scimToken}\n`, { mode: 0o600 });
  const configPath = join(work, "mayfly.yaml");
  writeFileSync(
    configPath,
    `ca:
  trustDomain: ${TRUST_DOMAIN}
devices:
  ekTrustDir: ${JSON.stringify(ekTrust)}
profiles:
  default:
    formats: [tpm-certify, tpm-quote]
    keyResidency: [tpm, bound]
    lifetime: 30s
owners:
  oidc:
    issuer: ${JSON.stringify(idp.issuer)}
    clientIds: [${MAYFLY_CLIENT}]
    caFile: ${JSON.stringify(join(work, "idp-ca.pem"))}
  scim:
    token: { file: ${JSON.stringify(join(work, "scim-token"))} }
`,
  );
  const rc = await loadConfig(configPath, {
    MAYFLY_DATA_DIR: join(work, "ca"),
    MAYFLY_LISTEN: "127.0.0.1:0",
  });
  const ca: RunningServer = await startServer(rc, {
    clock: systemClock,
    random: systemRandom,
    log: pino({ level: "silent" }),
    evidence: new EvidenceRegistry(tpmFormats()),
  });
  cleanups.push(() => ca.close());
  const caRoot = join(work, "ca", "root.pem");
  say(`listening at ${ca.url}; root certificate ${caRoot}; certificates live 30 s`);
  const api = async (method: string, path: string, body: unknown, headers: Record<string, string>) => {
    const res = await fetchJson(`${ca.url}${path}`, method, body, headers, readFileSync(caRoot, "utf8"));
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.json)}`);
    return res.json as Record<string, unknown>;
  };
  const scim = (method: string, path: string, body: unknown) =>
    api(method, `/scim/v2${path}`, body, {
      authorization: `Bearer ${scimToken}`,
      "content-type": "application/scim+json",
    });
  const scimUser = await scim("POST", "/Users", {
    schemas: ["urn:ietf:params:scim:schemas:core:2.0:User"],
    userName: "ada@example.test",
    externalId: "ada",
    name: { givenName: "Ada", familyName: "Lovelace" },
    emails: [{ primary: true, type: "work", value: "ada@example.test" }],
    displayName: "Ada Lovelace",
    active: true,
  });
  say(`the identity provider provisioned ada over SCIM (user ${String(scimUser.id)})`);

  step("Device activation: mayfly agent enrol");
  const stateDir = join(work, "agent-state");
  const tpmSpec = `swtpm:unix:${sock}`;
  const enrol = await mayfly([
    "agent",
    "enrol",
    "--tpm",
    tpmSpec,
    "--ca",
    ca.url,
    "--ca-bundle",
    caRoot,
    "--state",
    stateDir,
  ]);
  if (enrol.code !== 0) throw new Error(`agent enrol failed (${enrol.code}):\n${enrol.stderr}`);
  say(`$ mayfly agent enrol --tpm ${tpmSpec} --ca ${ca.url} --ca-bundle ${caRoot} --state ${stateDir}`);
  for (const l of enrol.stdout.trimEnd().split("\n")) say(`  ${l}`);
  const deviceId = /device (\S+)/.exec(enrol.stdout)![1]!;
  say("(EK certificate checked against the vendor CA; the AK proved itself with TPM2_ActivateCredential)");

  step("ada logs in and registers two agents on this device");
  const { idToken } = await idp.login({ account: "ada" });
  say("ada logged in at the identity provider (the demo answers the login page itself)");
  const register = (name: string, purpose: string) =>
    api(
      "POST",
      "/v1/agents",
      { name, deviceId, purpose, expiresAt: new Date(systemClock.now() + 7 * 86_400_000).toISOString() },
      { authorization: `Bearer ${idToken}` },
    );
  const alpha = await register("alpha", "calls beta for the demo");
  const beta = await register("beta", "serves alpha for the demo");
  say(`alpha: ${String(alpha.spiffeId)}`);
  say(`beta:  ${String(beta.spiffeId)}`);
  say(`owner: ada (${String(alpha.ownerId)})`);
  ownerNames.set(String(alpha.ownerId), "ada");

  step("Their certificates");
  const alphaDir = join(work, "alpha");
  const alphaRun = spawnMayfly([
    "agent",
    "run",
    "--agent",
    String(alpha.agentId),
    "--out",
    alphaDir,
    "--state",
    stateDir,
    "--key",
    "bound",
  ]);
  cleanups.push(() => {
    if (alphaRun.child.exitCode === null) alphaRun.child.kill("SIGTERM");
  });
  await alphaRun.waitFor(/next renewal in/);
  say(`alpha: $ mayfly agent run --agent ${String(alpha.agentId)} --out ${alphaDir} --key bound`);
  say(`  ${lastLine(alphaRun.stderr(), /certificate .* valid until/)}`);
  say(`  files: cert.pem chain.pem bundle.pem key.pem (0600), replaced atomically at each renewal`);
  const tpm = openTpm(tpmSpec, systemRandom);
  cleanups.push(() => tpm.close());
  const betaId: AgentIdentity = await startAgentIdentity({
    tpm,
    stateDir,
    agentId: String(beta.agentId),
    clock: systemClock,
    random: systemRandom,
  });
  cleanups.push(async () => {
    await betaId.stop();
  });
  say(
    `beta: the Node library (mayfly/agent), its key only in memory: certificate ${betaId.snapshot().serial}`,
  );
  say("both keys are fresh software keys bound to this TPM by an AK quote over SHA-256(nonce || key)");

  step("mTLS: alpha calls beta, each checks who the other is");
  const bundle = readFileSync(join(alphaDir, "bundle.pem"), "utf8");
  const rp = new RelyingParty({ bundle, trustDomain: TRUST_DOMAIN, clock: systemClock });
  const server: Server = createHttpsServer(
    { ...betaId.tlsOptions(), requestCert: true, rejectUnauthorized: true },
    (req, res) => {
      const peer = rp.verifySocket(req.socket as TLSSocket);
      const ok = peer.ownerId === String(alpha.ownerId);
      say(`beta sees:  ${describePeer(peer)}${ok ? "" : " (refused)"}`);
      res
        .writeHead(ok ? 200 : 403, { "content-type": "text/plain" })
        .end(ok ? `hello ${peer.agentId}\n` : "no\n");
    },
  );
  betaId.bindServer(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  cleanups.push(() => {
    server.close();
  });
  const port = (server.address() as AddressInfo).port;
  const call = async () => {
    const files = (n: string) => readFileSync(join(alphaDir, n), "utf8");
    const s = connect({
      host: "127.0.0.1",
      port,
      key: files("key.pem"),
      cert: files("cert.pem") + files("chain.pem"),
      ca: files("bundle.pem"),
      checkServerIdentity: rp.checkServerIdentity(),
    });
    await once(s, "secureConnect");
    say(`alpha sees: ${describePeer(rp.verifySocket(s))}`);
    s.end("GET / HTTP/1.0\r\n\r\n");
    const chunks: Buffer[] = [];
    for await (const c of s) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString();
    say(`beta answers: ${text.slice(text.indexOf("\r\n\r\n") + 4).trim()}`);
  };
  await call();

  step("A renewal: the same full check again, a new key and certificate for each");
  const before = { alpha: lastSerial(alphaRun.stderr()), beta: betaId.snapshot().serial };
  const rotated = once(betaId, "rotated");
  alphaRun.child.kill("SIGHUP"); // `mayfly agent run` renews now on SIGHUP instead of at half-life
  betaId.renewNow();
  await alphaRun.waitFor(/next renewal in/, 2);
  await rotated;
  say(
    `alpha: ${before.alpha} -> ${lastSerial(alphaRun.stderr())}  (SIGHUP: renew now rather than at half-life)`,
  );
  say(`beta:  ${before.beta} -> ${betaId.snapshot().serial}`);
  await call();

  step("ada leaves the organisation");
  await scim("PATCH", `/Users/${String(scimUser.id)}`, {
    schemas: ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    Operations: [{ op: "replace", value: { active: false } }],
  });
  say(
    "the identity provider sends SCIM PATCH active=false; nothing is revoked, nothing is pushed to the agents",
  );
  const denied = once(betaId, "denied") as Promise<[RenewerResult & { code: string }]>;
  alphaRun.child.kill("SIGHUP");
  betaId.renewNow();
  const exit = await alphaRun.exited;
  const [betaDenied] = await denied;
  say(`alpha: ${lastLine(alphaRun.stderr(), /stopped:/).replace(/^mayfly agent: /, "")}`);
  say(`beta:  renewal denied: ${betaDenied.code}`);
  say(
    `alpha's process exited with ${exit}; their current certificates lapse within 30 s and are not renewed`,
  );
  if (exit !== 10 || betaDenied.code !== "owner.inactive")
    throw new Error("the leaver was not denied as expected");

  process.stdout.write(
    `\nDone in ${secs()}: no static secret anywhere, and the owner's departure ended both agents.\n`,
  );
}

const ownerNames = new Map<string, string>();
function describePeer(p: PeerIdentity): string {
  const owner = ownerNames.has(p.ownerId) ? `${ownerNames.get(p.ownerId)} (${p.ownerId})` : p.ownerId;
  return `${p.spiffeId}, owner ${owner}, device ${p.deviceId}, ${p.attestationFormat}, ${p.keyResidency} key`;
}

function lastLine(text: string, re: RegExp): string {
  return (
    text
      .split("\n")
      .filter((l) => re.test(l))
      .at(-1) ?? ""
  ).replace(/^mayfly agent \S+: /, "");
}

function lastSerial(text: string): string {
  return /certificate ([0-9a-f]+)/.exec(lastLine(text, /certificate [0-9a-f]+ .*valid until/))?.[1] ?? "?";
}

async function fetchJson(
  url: string,
  method: string,
  body: unknown,
  headers: Record<string, string>,
  ca: string,
): Promise<{ status: number; json: unknown }> {
  const { request } = await import("node:https");
  const payload = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        ca,
        headers: {
          "content-type": "application/json",
          ...headers,
          "content-length": Buffer.byteLength(payload),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          let json: unknown = text;
          try {
            json = JSON.parse(text);
          } catch {
            // not JSON
          }
          resolve({ status: res.statusCode ?? 0, json });
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

function cliArgs(args: string[]): string[] {
  return ["--import", "tsx", join(REPO, "src/cli/main.ts"), ...args];
}

function mayfly(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, cliArgs(args), { cwd: REPO, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    child.on("close", (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

function spawnMayfly(args: string[]) {
  const child: ChildProcess = spawn(process.execPath, cliArgs(args), {
    cwd: REPO,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  const waiters = new Set<() => void>();
  child.stderr!.on("data", (b: Buffer) => {
    err += b.toString();
    for (const w of waiters) w();
  });
  const exited = new Promise<number>((resolve) => child.on("exit", (code) => resolve(code ?? 1)));
  return {
    child,
    exited,
    stderr: () => err,
    waitFor(re: RegExp, count = 1): Promise<void> {
      const g = new RegExp(re.source, "g");
      const done = () => (err.match(g)?.length ?? 0) >= count;
      return new Promise((resolve, reject) => {
        if (done()) return resolve();
        const timer = setTimeout(() => reject(new Error(`the agent did not log ${re}:\n${err}`)), 30_000);
        const check = () => {
          if (done()) {
            clearTimeout(timer);
            waiters.delete(check);
            resolve();
          }
        };
        waiters.add(check);
        void exited.then(() => {
          if (!done()) {
            clearTimeout(timer);
            reject(new Error(`the agent exited before logging ${re}:\n${err}`));
          }
        });
      });
    },
  };
}

try {
  await main();
  await cleanup();
  process.exit(0);
} catch (e) {
  process.stdout.write(`\nThe demo failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  await cleanup();
  process.exit(1);
}
