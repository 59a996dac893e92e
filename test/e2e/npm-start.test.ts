import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freshCheckout } from "../helpers/fresh-checkout.js";
import { https } from "../helpers/https.js";
import { openssl } from "../helpers/openssl.js";

// From a fresh checkout (no node_modules, no dist, no data), `npm start` installs,
// builds and serves on the embedded defaults. This is the README's first command.
let dir: string;
let child: ChildProcess;
let logs: Record<string, unknown>[] = [];
let port: number;
let output = "";

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mayfly-fresh-"));
  freshCheckout(dir);
  port = await freePort();
  child = spawn("npm", ["start"], {
    cwd: dir,
    env: {
      ...process.env,
      MAYFLY_LISTEN: `127.0.0.1:${port}`,
      MAYFLY_DATA_DIR: "",
      MAYFLY_CONFIG: "",
      npm_config_loglevel: "error",
    },
    detached: true,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let buffered = "";
  const onLine = (chunk: Buffer) => {
    output += chunk.toString();
    buffered += chunk.toString();
    let i = buffered.indexOf("\n");
    while (i >= 0) {
      const line = buffered.slice(0, i);
      buffered = buffered.slice(i + 1);
      if (line.startsWith("{")) {
        try {
          logs.push(JSON.parse(line));
        } catch {
          /* not a log line */
        }
      }
      i = buffered.indexOf("\n");
    }
  };
  child.stdout!.on("data", onLine);
  child.stderr!.on("data", (c: Buffer) => {
    output += c.toString();
  });
  const deadline = Date.now() + 280_000;
  while (!logs.some((l) => l.msg === "mayfly serving")) {
    if (child.exitCode !== null) throw new Error(`npm start exited ${child.exitCode}:\n${output}`);
    if (Date.now() > deadline) throw new Error(`npm start did not serve in time:\n${output}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}, 300_000);

afterAll(() => {
  if (child?.pid && child.exitCode === null) {
    try {
      process.kill(-child.pid, "SIGTERM");
    } catch {
      /* already gone */
    }
  }
  logs = [];
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("npm start from a fresh checkout", () => {
  it("serves on the embedded defaults and says where everything is", () => {
    const data = join(dir, ".mayfly");
    const byMsg = (m: string | RegExp) =>
      logs.find((l) => (typeof m === "string" ? l.msg === m : m.test(String(l.msg))));
    expect(byMsg("mayfly starting")).toMatchObject({ dataDir: data });
    expect(byMsg("store ready")).toMatchObject({ store: "sqlite", url: `sqlite:${join(data, "mayfly.db")}` });
    expect(byMsg("key store ready")).toMatchObject({ keystore: "file", keysDir: join(data, "keys") });
    expect(byMsg(/DEVELOPMENT ROOT/)).toMatchObject({ level: 40, root: join(data, "root.pem") });
    const created = byMsg("created development root and intermediate") as { rootFingerprintSha256: string };
    expect(created.rootFingerprintSha256).toMatch(/^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    expect(byMsg("mayfly serving")).toMatchObject({ url: `https://127.0.0.1:${port}` });
    expect(statSync(join(data, "keys")).mode & 0o777).toBe(0o700);
    // No secret in the logs: the passphrase value never appears.
    const passphrase = readFileSync(join(data, "keys", "passphrase"), "utf8").trim();
    expect(output).not.toContain(passphrase);
  });

  it("answers /healthz over HTTPS verified with the root from /v1/bundle", async () => {
    // Trust on first use, then check the fingerprint against the start-up log line.
    const bundle = await https(`https://127.0.0.1:${port}/v1/bundle`, { insecure: true });
    const b = bundle.json as {
      roots: { pem: string; fingerprint: string }[];
      intermediates: { pem: string }[];
    };
    const created = logs.find((l) => l.msg === "created development root and intermediate") as {
      rootFingerprintSha256: string;
    };
    expect(b.roots[0]!.fingerprint).toBe(created.rootFingerprintSha256);
    const health = await https(`https://127.0.0.1:${port}/healthz`, { ca: b.roots[0]!.pem });
    expect(health.status).toBe(200);
    expect(health.json).toEqual({ status: "ok" });
    const ready = await https(`https://127.0.0.1:${port}/readyz`, { ca: b.roots[0]!.pem });
    expect(ready.status).toBe(200);

    const rootFile = join(dir, "bundle-root.pem");
    const interFile = join(dir, "bundle-intermediate.pem");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(rootFile, b.roots[0]!.pem);
    writeFileSync(interFile, b.intermediates[0]!.pem);
    const v = await openssl(["verify", "-x509_strict", "-CAfile", rootFile, interFile]);
    expect(v.stdout.trim()).toBe(`${interFile}: OK`);

    // curl, a real TLS peer, agrees.
    const { execFileSync } = await import("node:child_process");
    const out = execFileSync("curl", ["-sS", "--cacert", rootFile, `https://127.0.0.1:${port}/healthz`], {
      encoding: "utf8",
    });
    expect(JSON.parse(out)).toEqual({ status: "ok" });
    // Without the root, verification fails.
    await expect(https(`https://127.0.0.1:${port}/healthz`)).rejects.toThrow(/certificate/);
  });

  it("serves metrics and problem+json", async () => {
    const root = readFileSync(join(dir, ".mayfly", "root.pem"), "utf8");
    const m = await https(`https://127.0.0.1:${port}/metrics`, { ca: root });
    expect(m.text).toMatch(/mayfly_issuances_total|mayfly_issuance_duration_seconds/);
    const nf = await https(`https://127.0.0.1:${port}/v1/agents/x/certificates`, { ca: root, body: {} });
    expect(nf.headers["content-type"]).toMatch(/application\/problem\+json/);
    expect((nf.json as { code: string }).code).toBe("request.invalid");
  });
});
