// `npm run bench`: Mayfly's full attested issuance side by side with cfssl's bare sign,
// same load tool, same machine, interleaved (A B A B), with the physical limit from
// `openssl speed` measured in the same run. See scripts/bench/README.md.
//
//   npm run bench -- [--quick] [--reps 3] [--seconds 10] [--devices 2000] [--workers 2]
//                    [--clients 2] [--conc 16,64] [--no-scale] [--profile DIR]
//                    [--profile-clients DIR] [--keep] [--floor] [--profile-floor DIR]
//
// --floor adds a third peer, floor-server.ts: a bare node:https server doing per issuance
// only the work Mayfly's design mandates (a measuring tool, not a CA), driven by the same
// load as Mayfly and interleaved with the other two.
import { type ChildProcess, fork } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { openStore } from "../../src/store/open.js";
import type { RunMessage, RunResult } from "./load-worker.js";
import { cpuMicros, processTree, rssBytes } from "./procfs.js";
import { opensslSpeed, REPO, type Running, startCfssl, startFloor, startMayfly } from "./servers.js";
import { enrolDevices, seedScale } from "./setup.js";

const argv = process.argv.slice(2);
const has = (f: string) => argv.includes(f);
const opt = (f: string, d: string) => {
  const i = argv.indexOf(f);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : d;
};
const quick = has("--quick");
const REPS = Number(opt("--reps", "3"));
const SECONDS = Number(opt("--seconds", quick ? "2" : "10"));
const WARMUP_MS = quick ? 500 : 2000;
const DEVICES = Number(opt("--devices", quick ? "256" : "2000"));
const WORKERS = Number(opt("--workers", "2"));
const CLIENTS = Number(opt("--clients", "2"));
const CONCS = opt("--conc", "16,64").split(",").map(Number);
const SCALE = !quick && !has("--no-scale");
const SCALE_AGENTS = Number(opt("--scale-agents", "100000"));
const SCALE_CERTS = Number(opt("--scale-certs", "1000000"));
const PROFILE = has("--profile") ? opt("--profile", join(REPO, "bench-profile")) : null;
const PROFILE_CLIENTS = has("--profile-clients")
  ? opt("--profile-clients", join(REPO, "bench-profile-clients"))
  : null;
const FLOOR = has("--floor") || has("--profile-floor");
const PROFILE_FLOOR = has("--profile-floor")
  ? opt("--profile-floor", join(REPO, "bench-profile-floor"))
  : null;
const SPEED_SECONDS = quick ? 1 : 3;
const TRUST_DOMAIN = "mayfly.internal";

const t0 = Date.now();
function say(msg: string): void {
  const s = ((Date.now() - t0) / 1000).toFixed(1).padStart(6);
  process.stdout.write(`[${s}s] ${msg}\n`);
}

interface Client {
  proc: ChildProcess;
  run(m: RunMessage): Promise<RunResult>;
}

function startClient(devicesPath: string, slot: number, slots: number): Promise<Client> {
  const prof = PROFILE_CLIENTS ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_CLIENTS}`] : [];
  const proc = fork(join(import.meta.dirname, "load-worker.ts"), [devicesPath, String(slot), String(slots)], {
    execArgv: ["--import", "tsx", ...prof],
    cwd: REPO,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let pending: ((r: { ok: boolean; result?: RunResult; error?: string }) => void) | null = null;
  return new Promise((resolve, reject) => {
    proc.once("exit", (c) => {
      const err = `load worker exited with ${c}`;
      reject(new Error(err));
      pending?.({ ok: false, error: err });
    });
    proc.on("message", (m: { ready?: boolean; ok?: boolean; result?: RunResult; error?: string }) => {
      if (m.ready) {
        resolve({
          proc,
          run: (msg) =>
            new Promise((res, rej) => {
              pending = (r) => (r.ok ? res(r.result!) : rej(new Error(r.error)));
              proc.send(msg);
            }),
        });
        return;
      }
      const p = pending;
      pending = null;
      p?.(m as { ok: boolean; result?: RunResult; error?: string });
    });
  });
}

type Target = "mayfly" | "cfssl" | "floor";

interface CaseResult {
  target: Target;
  conc: number;
  rep: number;
  rate: number;
  reqRate: number;
  p50: number;
  p99: number;
  cpuUs: number;
  clientCpuUs: number;
  rssMb: number;
  errors: number;
  firstError: string | null;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function runCase(
  clients: Client[],
  server: Running,
  target: Target,
  conc: number,
  rep: number,
): Promise<CaseResult> {
  const shares = clients.map(
    (_, i) => Math.floor(conc / clients.length) + (i < conc % clients.length ? 1 : 0),
  );
  const msg = (concurrency: number): RunMessage => ({
    cmd: "run",
    // The floor speaks Mayfly's agent protocol: the load drives it exactly as it drives Mayfly.
    target: target === "cfssl" ? "cfssl" : "mayfly",
    url: server.url,
    caPem: server.caPem,
    concurrency,
    durationMs: SECONDS * 1000,
    // Warm-up (JIT, caches, connections, a full pipeline) flows into the measured window.
    warmupMs: WARMUP_MS,
  });
  // The server's CPU over the same window the load processes measure (their clocks start
  // when the message arrives, within a millisecond of this).
  const pids = processTree(server.proc.pid!);
  let cpu0 = 0;
  let cpu1 = Number.NaN;
  const w0 = setTimeout(() => {
    cpu0 = cpuMicros(pids);
  }, WARMUP_MS);
  const w1 = setTimeout(
    () => {
      cpu1 = cpuMicros(pids);
    },
    WARMUP_MS + SECONDS * 1000,
  );
  const results = await Promise.all(clients.map((c, i) => c.run(msg(shares[i]!))));
  clearTimeout(w0);
  clearTimeout(w1);
  if (Number.isNaN(cpu1)) cpu1 = cpuMicros(pids);
  const rss = rssBytes(pids);
  const lat = results.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const completed = results.reduce((n, r) => n + r.completed, 0);
  const requests = results.reduce((n, r) => n + r.requests, 0);
  const errors = results.reduce((n, r) => n + r.errors, 0);
  return {
    target,
    conc,
    rep,
    rate: completed / SECONDS,
    reqRate: requests / SECONDS,
    p50: percentile(lat, 50) / 1000,
    p99: percentile(lat, 99) / 1000,
    cpuUs: completed > 0 ? (cpu1 - cpu0) / completed : Number.NaN,
    clientCpuUs: completed > 0 ? results.reduce((n, r) => n + r.cpuUs, 0) / completed : Number.NaN,
    rssMb: rss / 2 ** 20,
    errors,
    firstError: results.find((r) => r.firstError)?.firstError ?? null,
  };
}

function line(r: CaseResult): string {
  return (
    `${r.target.padEnd(6)} c=${String(r.conc).padEnd(3)} rep ${r.rep}: ${r.rate.toFixed(0).padStart(6)} iss/s ` +
    `${r.reqRate.toFixed(0).padStart(6)} req/s  p50 ${r.p50.toFixed(1).padStart(6)} ms  p99 ${r.p99.toFixed(1).padStart(6)} ms  ` +
    `cpu ${r.cpuUs.toFixed(0).padStart(5)} µs/iss (client ${r.clientCpuUs.toFixed(0)})  rss ${r.rssMb.toFixed(0)} MiB` +
    (r.errors ? `  errors ${r.errors} (${r.firstError})` : "")
  );
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "mayfly-bench-"));
  const cfsslDir = join(dir, "cfssl");
  mkdirSync(cfsslDir);
  say(
    `bench ${quick ? "(quick) " : ""}in ${dir}: ${REPS} reps x conc ${CONCS.join(",")} x ${SECONDS}s, ` +
      `${DEVICES} devices, mayfly workers ${WORKERS}, load processes ${CLIENTS}`,
  );
  const nodeArgs = [
    ...(process.env.BENCH_MAYFLY_NODE_ARGS?.split(" ").filter(Boolean) ?? []),
    ...(PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE}`] : []),
  ];
  const mayfly = await startMayfly({ dir, workers: WORKERS, nodeArgs });
  say(`mayfly up at ${mayfly.url} (pids ${processTree(mayfly.proc.pid!).join(",")})`);
  const cfssl = await startCfssl(cfsslDir);
  say(`cfssl up at ${cfssl.url} (pid ${cfssl.proc.pid})`);
  const devicesPath = join(dir, "devices.jsonl");
  await enrolDevices({
    url: mayfly.url,
    caPem: mayfly.caPem,
    dbPath: mayfly.dbPath,
    count: DEVICES,
    trustDomain: TRUST_DOMAIN,
    out: devicesPath,
    progress: (n) => say(`  activated ${n}/${DEVICES} devices`),
  });
  say(`${DEVICES} simulated TPM devices activated through /v1/devices/activations; agents seeded`);
  // After enrolment: the floor reads the devices file for each agent's AK.
  const floor = FLOOR
    ? await startFloor({
        dir: join(dir, "floor"),
        devicesPath,
        workers: WORKERS,
        trustDomain: TRUST_DOMAIN,
        nodeArgs: PROFILE_FLOOR ? ["--cpu-prof", `--cpu-prof-dir=${PROFILE_FLOOR}`] : [],
      })
    : null;
  if (floor) say(`floor up at ${floor.url} (pids ${processTree(floor.proc.pid!).join(",")})`);
  const clients = await Promise.all(
    Array.from({ length: CLIENTS }, (_, i) => startClient(devicesPath, i, CLIENTS)),
  );

  const results: CaseResult[] = [];
  let speed: { sign: number; verify: number } | null = null;
  try {
    for (let rep = 1; rep <= REPS; rep++) {
      for (const conc of CONCS) {
        // A B within a repetition, and the order flipped every other one (A B B A); with the
        // floor, A B C then C B A.
        const order: [Target, Running][] = [
          ["mayfly", mayfly],
          ["cfssl", cfssl],
        ];
        if (floor) order.push(["floor", floor]);
        if (rep % 2 === 0) order.reverse();
        for (const [target, server] of order) {
          const r = await runCase(clients, server, target, conc, rep);
          results.push(r);
          say(line(r));
        }
      }
      if (rep === 1) {
        say(`openssl speed -seconds ${SPEED_SECONDS} ecdsap256 ...`);
        speed = opensslSpeed(SPEED_SECONDS);
        say(`  one core: ${speed.sign.toFixed(0)} sign/s, ${speed.verify.toFixed(0)} verify/s`);
      }
    }

    let scale: string[] = [];
    if (SCALE) scale = await scalePhase(clients, mayfly);

    report(results, speed!, scale);
  } finally {
    // Wait for the load processes to end: --cpu-prof writes its profile on exit.
    await Promise.all(
      clients.map(
        (c) =>
          new Promise<void>((res) => {
            if (c.proc.exitCode !== null) return res();
            c.proc.once("exit", () => res());
            c.proc.send({ cmd: "exit" });
          }),
      ),
    );
    await Promise.all([mayfly.stop(), cfssl.stop(), floor?.stop()]);
    if (PROFILE)
      say(
        `CPU profiles in ${PROFILE} (summarise: node --import tsx scripts/bench/profile-top.ts ${PROFILE})`,
      );
    if (PROFILE_CLIENTS)
      say(
        `load-process CPU profiles in ${PROFILE_CLIENTS} (summarise: node --import tsx scripts/bench/profile-top.ts ${PROFILE_CLIENTS})`,
      );
    if (PROFILE_FLOOR)
      say(
        `floor CPU profiles in ${PROFILE_FLOOR} (summarise: node --import tsx scripts/bench/profile-top.ts ${PROFILE_FLOOR})`,
      );
    if (!has("--keep")) rmSync(dir, { recursive: true, force: true });
  }
}

async function scalePhase(clients: Client[], mayfly: Running & { dbPath: string }): Promise<string[]> {
  say(
    `scale of state: seeding ${SCALE_AGENTS.toLocaleString()} agents and ${SCALE_CERTS.toLocaleString()} certificates with direct SQL`,
  );
  const seeded = seedScale({
    dbPath: mayfly.dbPath,
    agents: SCALE_AGENTS,
    certificates: SCALE_CERTS,
    trustDomain: TRUST_DOMAIN,
    progress: (w) => say(`  ${w}`),
  });
  say(
    `  store now holds ${seeded.agents.toLocaleString()} agents, ${seeded.certificates.toLocaleString()} certificates (${(seeded.ms / 1000).toFixed(1)} s)`,
  );
  const out = [
    `Scale of state: ${seeded.agents.toLocaleString()} agents, ${seeded.certificates.toLocaleString()} certificate rows`,
  ];
  // Batches of the retention job at the server's size, timed from here before the load.
  const store = await openStore(mayfly.dbPath, { durability: "full", migrate: false });
  const cutoff = Date.now() - 7 * 86_400_000;
  for (let i = 0; i < 3; i++) {
    const t = performance.now();
    const n = await store.tx((tx) => tx.deleteCertificatesExpiredBefore(cutoff, 200));
    out.push(`  tidy batch ${i + 1}: deleted ${n} expired rows in ${(performance.now() - t).toFixed(0)} ms`);
  }
  await store.close();
  for (const conc of CONCS) {
    const r = await runCase(clients, mayfly, "mayfly", conc, 0);
    say(line(r));
    out.push(
      `  mayfly c=${conc}: ${r.rate.toFixed(0)} iss/s, p50 ${r.p50.toFixed(1)} ms, p99 ${r.p99.toFixed(1)} ms, ` +
        `${r.cpuUs.toFixed(0)} µs CPU/iss, RSS ${r.rssMb.toFixed(0)} MiB (all server processes)`,
    );
  }
  const db = new Database(mayfly.dbPath, { readonly: true });
  const expired = db.prepare("SELECT COUNT(*) AS n FROM certificates WHERE not_after < ?");
  out.push(
    `  expired rows left after the runs (the server's tidy job deletes them every minute): ${
      (expired.get(Date.now() - 7 * 86_400_000) as { n: number }).n
    }`,
  );
  db.close();
  return out;
}

function report(results: CaseResult[], speed: { sign: number; verify: number }, scale: string[]): void {
  const rows: string[] = [];
  const pad = (s: string, n: number) => s.padStart(n);
  rows.push("");
  rows.push(
    `Results: medians of ${REPS} interleaved repetitions, ${SECONDS} s each; latency per issuance ` +
      `(Mayfly${FLOOR ? " and floor" : ""}: challenge + certificate; cfssl: one sign request)`,
  );
  const targets: Target[] = FLOOR ? ["mayfly", "cfssl", "floor"] : ["mayfly", "cfssl"];
  rows.push(
    `${"case".padEnd(12)}${pad("iss/s", 8)}${pad("req/s", 8)}${pad("p50 ms", 8)}${pad("p99 ms", 8)}` +
      `${pad("CPU µs/iss", 12)}${pad("client µs", 11)}${pad("RSS MiB", 9)}${pad(FLOOR ? "x/cfssl" : "M/cfssl", 9)}`,
  );
  const med = (t: string, c: number, k: keyof CaseResult) =>
    median(results.filter((r) => r.target === t && r.conc === c).map((r) => r[k] as number));
  for (const c of CONCS) {
    for (const t of targets) {
      const ratio = t !== "cfssl" ? (med(t, c, "rate") / med("cfssl", c, "rate")).toFixed(2) : "";
      rows.push(
        `${`${t} c=${c}`.padEnd(12)}${pad(med(t, c, "rate").toFixed(0), 8)}${pad(med(t, c, "reqRate").toFixed(0), 8)}` +
          `${pad(med(t, c, "p50").toFixed(1), 8)}${pad(med(t, c, "p99").toFixed(1), 8)}` +
          `${pad(med(t, c, "cpuUs").toFixed(0), 12)}${pad(med(t, c, "clientCpuUs").toFixed(0), 11)}` +
          `${pad(med(t, c, "rssMb").toFixed(0), 9)}${pad(ratio, 9)}`,
      );
    }
  }
  const errs = results.reduce((n, r) => n + r.errors, 0);
  if (errs) rows.push(`errors during measured runs: ${errs}`);
  const signUs = 1e6 / speed.sign;
  const verifyUs = 1e6 / speed.verify;
  const mayflyCrypto = signUs + 3 * verifyUs; // CSR, AK attestation, post-signing check
  const cfsslCrypto = signUs + verifyUs; // CSR
  const cores = 2;
  const best = Math.max(...CONCS.map((c) => med("mayfly", c, "rate")));
  const bestCfssl = Math.max(...CONCS.map((c) => med("cfssl", c, "rate")));
  rows.push("");
  rows.push(
    `Physical limit (openssl speed ecdsap256, one core): ${speed.sign.toFixed(0)} sign/s ` +
      `(${signUs.toFixed(1)} µs), ${speed.verify.toFixed(0)} verify/s (${verifyUs.toFixed(1)} µs)`,
  );
  rows.push(
    `  Mayfly issuance = 1 sign + 3 verify = ${mayflyCrypto.toFixed(0)} µs -> ${((cores * 1e6) / mayflyCrypto).toFixed(0)}/s on ${cores} cores; ` +
      `best Mayfly ${best.toFixed(0)}/s = ${((100 * best * mayflyCrypto) / (cores * 1e6)).toFixed(0)}% of it`,
  );
  rows.push(
    `  cfssl sign = 1 sign + 1 verify = ${cfsslCrypto.toFixed(0)} µs -> ${((cores * 1e6) / cfsslCrypto).toFixed(0)}/s on ${cores} cores; ` +
      `best cfssl ${bestCfssl.toFixed(0)}/s = ${((100 * bestCfssl * cfsslCrypto) / (cores * 1e6)).toFixed(0)}% of it`,
  );
  for (const c of CONCS) {
    const cpu = med("mayfly", c, "cpuUs");
    rows.push(
      `  c=${c}: crypto is ${((100 * mayflyCrypto) / cpu).toFixed(0)}% of Mayfly's ${cpu.toFixed(0)} µs server CPU per issuance`,
    );
  }
  // The server and the load tool share the cores, so what one issuance costs the whole
  // machine (server + load CPU) bounds the rate either peer can show here.
  rows.push("");
  rows.push(
    `Whole-machine CPU per issuance (server + load tool, sharing ${cores} cores) and the rate it allows:`,
  );
  for (const c of CONCS) {
    for (const t of targets) {
      const server = med(t, c, "cpuUs");
      const load = med(t, c, "clientCpuUs");
      const ceiling = (cores * 1e6) / (server + load);
      const rate = med(t, c, "rate");
      rows.push(
        `  ${`${t} c=${c}`.padEnd(12)} ${server.toFixed(0)} + ${load.toFixed(0)} = ${(server + load).toFixed(0)} µs ` +
          `-> at most ${ceiling.toFixed(0)}/s; measured ${rate.toFixed(0)}/s (${((100 * rate) / ceiling).toFixed(0)}%)`,
      );
    }
  }
  const ratio64 = med("mayfly", Math.max(...CONCS), "rate") / med("cfssl", Math.max(...CONCS), "rate");
  const p99 = med("mayfly", Math.max(...CONCS), "p99");
  rows.push("");
  rows.push(
    `Targets at c=${Math.max(...CONCS)}: Mayfly/cfssl ${ratio64.toFixed(2)} (>= 0.5: ${ratio64 >= 0.5 ? "met" : "NOT met"}; ` +
      `stretch 1.0: ${ratio64 >= 1 ? "met" : "not met"}), p99 ${p99.toFixed(1)} ms (<= 50: ${p99 <= 50 ? "met" : "NOT met"})`,
  );
  if (FLOOR) rows.push(...floorLines(med, mayflyCrypto));
  rows.push(...scale);
  process.stdout.write(`${rows.join("\n")}\n`);
}

/**
 * What the floor says about Mayfly: its server CPU per issuance next to Mayfly's, the
 * crypto's share of it, and the Mayfly server CPU the 0.5x target allows at the measured
 * load and cfssl costs (the machine's cores are shared, so the rate ratio is about
 * (cfssl server + load) / (Mayfly server + load)).
 */
function floorLines(med: (t: string, c: number, k: keyof CaseResult) => number, crypto: number): string[] {
  const out = [
    "",
    "Floor (floor-server.ts: only the mandated work per issuance; a measuring tool, not a CA):",
  ];
  for (const c of CONCS) {
    const f = med("floor", c, "cpuUs");
    const m = med("mayfly", c, "cpuUs");
    const cfssl = med("cfssl", c, "cpuUs") + med("cfssl", c, "clientCpuUs");
    const whole = (t: string) => cfssl / (med(t, c, "cpuUs") + med(t, c, "clientCpuUs"));
    const allowed = 2 * cfssl - med("mayfly", c, "clientCpuUs");
    out.push(
      `  c=${c}: floor server ${f.toFixed(0)} µs/iss (crypto ${((100 * crypto) / f).toFixed(0)}% of it), ` +
        `Mayfly ${m.toFixed(0)} µs = floor + ${(m - f).toFixed(0)}; cfssl/x whole-machine CPU: ` +
        `floor ${whole("floor").toFixed(2)}, mayfly ${whole("mayfly").toFixed(2)}; ` +
        `0.5x needs Mayfly's server <= ${allowed.toFixed(0)} µs at its load's ${med("mayfly", c, "clientCpuUs").toFixed(0)} µs`,
    );
  }
  return out;
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
