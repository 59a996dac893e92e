import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { join, resolve } from "node:path";

// The two servers under test, each on loopback over TLS: Mayfly (`mayfly serve`, its own
// process tree) and Cloudflare's cfssl (`cfssl serve` from Debian's golang-cfssl) with an
// ECDSA P-256 CA made by openssl. With --floor a third: floor-server.ts, the least a Node
// server can do per Mayfly issuance (a measuring tool, not a CA).

export interface Running {
  name: string;
  url: string;
  /** PEM the client trusts for the server's TLS certificate. */
  caPem: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => res(port));
    });
  });
}

function get(url: string, caPem: string, method = "GET", body?: string): Promise<number> {
  return new Promise((res) => {
    const req = request(url, { method, ca: caPem, timeout: 2000 }, (r) => {
      r.resume();
      r.on("end", () => res(r.statusCode ?? 0));
    });
    req.on("error", () => res(0));
    req.on("timeout", () => req.destroy());
    req.end(body);
  });
}

async function waitFor(what: string, ok: () => Promise<boolean> | boolean, ms = 60_000): Promise<void> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (await ok()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} did not come up within ${ms / 1000} s`);
}

function stopper(proc: ChildProcess, signal: NodeJS.Signals = "SIGTERM"): () => Promise<void> {
  return () =>
    new Promise((res) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return res();
      const t = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      proc.once("exit", () => {
        clearTimeout(t);
        res();
      });
      proc.kill(signal);
    });
}

export const REPO = resolve(import.meta.dirname, "../..");

export interface MayflyOptions {
  dir: string;
  workers: number;
  /** Extra node flags for the server processes (e.g. --cpu-prof). */
  nodeArgs?: string[];
}

export async function startMayfly(o: MayflyOptions): Promise<Running & { dataDir: string; dbPath: string }> {
  const port = await freePort();
  const dataDir = join(o.dir, "mayfly-data");
  const cfg = join(o.dir, "mayfly.yaml");
  writeFileSync(
    cfg,
    [
      `dataDir: ${dataDir}`,
      "server:",
      `  listen: 127.0.0.1:${port}`,
      "store:",
      "  durability: full",
      "log:",
      "  level: warn",
      "profiles:",
      "  default:",
      "    formats: [tpm-certify]",
      "    keyResidency: [tpm]",
      "",
    ].join("\n"),
  );
  // Built from this tree first, so the bench measures the code as checked out.
  execFileSync("npm", ["run", "--silent", "build"], { cwd: REPO, stdio: ["ignore", "ignore", "inherit"] });
  const log = openSync(join(o.dir, "mayfly.log"), "a");
  const proc = spawn(
    process.execPath,
    [
      ...(o.nodeArgs ?? []),
      // What `npm start` runs: the build of this tree (made just before, see below).
      join(REPO, "dist/cli/main.js"),
      "serve",
      "-c",
      cfg,
      "--workers",
      String(o.workers),
    ],
    { cwd: REPO, stdio: ["ignore", log, log], env: { ...process.env, MAYFLY_LOG_LEVEL: "warn" } },
  );
  const rootPath = join(dataDir, "root.pem");
  const url = `https://127.0.0.1:${port}`;
  let caPem = "";
  await waitFor("mayfly", async () => {
    if (proc.exitCode !== null) throw new Error(`mayfly exited; see ${join(o.dir, "mayfly.log")}`);
    if (!existsSync(rootPath)) return false;
    caPem = readFileSync(rootPath, "utf8");
    return (await get(`${url}/readyz`, caPem)) === 200;
  });
  // With several workers, the first starts alone (it may create the CA); wait for the rest.
  if (o.workers > 1) await new Promise((r) => setTimeout(r, 1500));
  return {
    name: "mayfly",
    url,
    caPem,
    proc,
    dataDir,
    dbPath: join(dataDir, "mayfly.db"),
    stop: stopper(proc, "SIGINT"),
  };
}

export interface FloorOptions {
  dir: string;
  /** The bench's devices file (setup.ts): which AK each agent's device certifies with. */
  devicesPath: string;
  workers: number;
  trustDomain: string;
  /** Extra node flags for the floor's processes (e.g. --cpu-prof; the workers inherit them). */
  nodeArgs?: string[];
}

/**
 * floor-server.ts, compiled first (build-tree.sh: plain node runs it, as Mayfly runs from
 * dist; under tsx every closure is named at creation), node:cluster with `workers` workers,
 * its own P-256 root in DIR/root.pem for the load tool to trust.
 */
export async function startFloor(o: FloorOptions): Promise<Running> {
  mkdirSync(o.dir, { recursive: true });
  const build = join(o.dir, "build");
  execFileSync("bash", [join(REPO, "scripts/bench/build-tree.sh"), REPO, build], {
    stdio: ["ignore", "ignore", "inherit"],
  });
  const port = await freePort();
  const log = openSync(join(o.dir, "floor.log"), "a");
  const proc = spawn(
    process.execPath,
    [
      ...(o.nodeArgs ?? []),
      join(build, "scripts/bench/floor-server.js"),
      "--dir",
      o.dir,
      "--devices",
      o.devicesPath,
      "--port",
      String(port),
      "--workers",
      String(o.workers),
      "--trust-domain",
      o.trustDomain,
    ],
    { cwd: REPO, stdio: ["ignore", log, log] },
  );
  const url = `https://127.0.0.1:${port}`;
  let caPem = "";
  await waitFor("floor", async () => {
    if (proc.exitCode !== null) throw new Error(`floor exited; see ${join(o.dir, "floor.log")}`);
    // Written by the primary once every worker listens.
    if (!existsSync(join(o.dir, "ready"))) return false;
    caPem = readFileSync(join(o.dir, "root.pem"), "utf8");
    return (await get(`${url}/readyz`, caPem)) === 200;
  });
  return { name: "floor", url, caPem, proc, stop: stopper(proc, "SIGINT") };
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

export async function startCfssl(dir: string): Promise<Running> {
  // An ECDSA P-256 CA for cfssl to sign with, and a separate TLS identity for its listener.
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca-key.pem"], dir);
  openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      "ca-key.pem",
      "-out",
      "ca.pem",
      "-days",
      "365",
      "-subj",
      "/O=Bench/CN=cfssl bench CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  openssl(["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "tls-key.pem"], dir);
  openssl(
    [
      "req",
      "-x509",
      "-new",
      "-key",
      "tls-key.pem",
      "-out",
      "tls.pem",
      "-days",
      "30",
      "-subj",
      "/CN=127.0.0.1",
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ],
    dir,
  );
  writeFileSync(
    join(dir, "cfssl.json"),
    JSON.stringify({
      signing: { default: { expiry: "5m", usages: ["digital signature", "client auth", "server auth"] } },
    }),
  );
  const port = await freePort();
  const log = openSync(join(dir, "cfssl.log"), "a");
  const proc = spawn(
    "cfssl",
    [
      "serve",
      "-address",
      "127.0.0.1",
      "-port",
      String(port),
      "-ca",
      "ca.pem",
      "-ca-key",
      "ca-key.pem",
      "-config",
      "cfssl.json",
      "-tls-cert",
      "tls.pem",
      "-tls-key",
      "tls-key.pem",
      "-loglevel",
      "5",
    ],
    { cwd: dir, stdio: ["ignore", log, log] },
  );
  const caPem = readFileSync(join(dir, "tls.pem"), "utf8");
  const url = `https://127.0.0.1:${port}`;
  await waitFor("cfssl", async () => {
    if (proc.exitCode !== null) throw new Error(`cfssl exited; see ${join(dir, "cfssl.log")}`);
    return (await get(`${url}/api/v1/cfssl/info`, caPem, "POST", "{}")) === 200;
  });
  return { name: "cfssl", url, caPem, proc, stop: stopper(proc) };
}

/** `openssl speed -seconds N ecdsap256`: sign/s and verify/s on one core. */
export function opensslSpeed(seconds: number): { sign: number; verify: number } {
  const out = execFileSync("openssl", ["speed", "-seconds", String(seconds), "ecdsap256"], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "ignore"],
  });
  const m = /256 bits ecdsa \(nistp256\)\s+[\d.]+s\s+[\d.]+s\s+([\d.]+)\s+([\d.]+)/.exec(out);
  if (!m) throw new Error(`cannot read openssl speed output:\n${out}`);
  return { sign: Number(m[1]), verify: Number(m[2]) };
}
