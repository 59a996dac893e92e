import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CaClient } from "../../src/agent/index.js";
import type { TpmClient } from "../../src/tpm/client/index.js";
import { swtpmTrustDir } from "../e2e-tpm/helpers/live.js";
import { REPO } from "../helpers/fresh-checkout.js";
import { startTestCa, type TestCa } from "../helpers/test-ca.js";
import { clientFor } from "../tpm/client/live-client.js";
import { Swtpm } from "../tpm/helpers/swtpm.js";

// The setting of the agent tests: one manufactured swtpm per file, a real Mayfly (HTTPS,
// SQLite) trusting its EK CA, profiles with the shortest lifetime the CA allows (30 s), and
// the mayfly CLI run from source as a separate process, as an operator would run it.

export const AGENT_CA_CONFIG = (ekTrustDir: string, lifetime = "30s", maxLifetime = "1m") => `
devices:
  ekTrustDir: ${JSON.stringify(ekTrustDir)}
  activationRateLimit: 1000
profiles:
  default:
    formats: [tpm-certify, tpm-quote]
    keyResidency: [tpm, bound]
    lifetime: ${lifetime}
    maxLifetime: ${maxLifetime}
  bound-only:
    formats: [tpm-quote]
    keyResidency: [bound]
    lifetime: ${lifetime}
    maxLifetime: ${maxLifetime}
`;

export interface AgentEnv {
  sw: Swtpm;
  /** A client on the swtpm for the test itself (never used while a CLI process is). */
  tpm: TpmClient;
  ca: TestCa;
  client: CaClient;
  /** --tpm for the CLI. */
  tpmSpec: string;
  work: string;
  /** The CA root, as an operator hands it to `agent enrol --ca-bundle`. */
  caBundleFile: string;
  close(): Promise<void>;
}

export async function startAgentEnv(
  seed: string,
  opts: { tcp?: boolean; lifetime?: string; maxLifetime?: string; extraConfig?: string } = {},
): Promise<AgentEnv> {
  const work = mkdtempSync(join(tmpdir(), "mayfly-e2e-agent-"));
  const closers: Array<() => Promise<void> | void> = [() => rmSync(work, { recursive: true, force: true })];
  const close = async () => {
    for (const c of closers.reverse()) await c();
  };
  try {
    const sw = await Swtpm.start({ manufacture: true, ...(opts.tcp ? { tcp: true } : {}) });
    closers.push(() => sw.stop());
    const tpm = clientFor(sw, seed);
    closers.push(() => tpm.close());
    const ca = await startTestCa(
      AGENT_CA_CONFIG(swtpmTrustDir(sw, work), opts.lifetime, opts.maxLifetime) + (opts.extraConfig ?? ""),
    );
    closers.push(() => ca.close());
    const client = new CaClient({ url: ca.url, ca: ca.rootPem });
    closers.push(() => client.close());
    const caBundleFile = join(work, "ca-root.pem");
    writeFileSync(caBundleFile, ca.rootPem);
    const s = sw.server;
    const tpmSpec = "path" in s ? `swtpm:unix:${s.path}` : `swtpm:${s.host}:${s.port}`;
    return { sw, tpm, ca, client, tpmSpec, work, caBundleFile, close };
  } catch (e) {
    await close();
    throw e;
  }
}

/** A long-running `mayfly agent …` process whose stderr can be waited on. */
export interface CliProcess {
  child: ChildProcess;
  stderr(): string;
  stdout(): string;
  /** Resolves when stderr has matched `re` `count` times; rejects on exit or timeout. */
  waitFor(re: RegExp, count?: number, timeoutMs?: number): Promise<void>;
  exited: Promise<number>;
}

export function spawnMayfly(args: string[], env: Record<string, string> = {}): CliProcess {
  const child = spawn(process.execPath, ["--import", "tsx", join(REPO, "src/cli/main.ts"), ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let err = "";
  let out = "";
  const listeners = new Set<() => void>();
  child.stderr!.on("data", (b: Buffer) => {
    err += b.toString();
    for (const l of listeners) l();
  });
  child.stdout!.on("data", (b: Buffer) => {
    out += b.toString();
  });
  const exited = new Promise<number>((resolve) =>
    child.on("exit", (code, signal) => resolve(code ?? (signal ? 128 : 1))),
  );
  return {
    child,
    stderr: () => err,
    stdout: () => out,
    exited,
    waitFor(re, count = 1, timeoutMs = 90_000) {
      const g = new RegExp(re.source, re.flags.includes("g") ? re.flags : `${re.flags}g`);
      const matched = () => (err.match(g)?.length ?? 0) >= count;
      return new Promise<void>((resolve, reject) => {
        if (matched()) return resolve();
        const timer = setTimeout(() => {
          listeners.delete(check);
          reject(new Error(`timed out waiting for ${re} x${count}; stderr:\n${err}`));
        }, timeoutMs);
        const check = () => {
          if (matched()) {
            clearTimeout(timer);
            listeners.delete(check);
            resolve();
          }
        };
        listeners.add(check);
        void exited.then((code) => {
          if (!matched()) {
            clearTimeout(timer);
            listeners.delete(check);
            reject(new Error(`exited ${code} before ${re} x${count}; stderr:\n${err}`));
          }
        });
      });
    },
  };
}
