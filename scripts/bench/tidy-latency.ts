// What the retention job does to issuance latency while it works through a backlog of
// expired certificate rows: the store's part of an issuance (record-tx.ts, the recording
// transaction with durable commits) at concurrency 64 on one SQLite file, with the tidy
// job running alongside, in one process. Variants, each on a fresh copy of the same seeded
// database, interleaved over rounds:
//   none      no tidy job (the baseline)
//   old       batches of 500 back to back (the job before pacing: pauseRatio 0)
//   paced     the job as configured now (src/server/tidy.ts defaults)
// Prints per variant the median over rounds of p50/p99/max transaction latency, the
// transactions per second, and the expired rows the job deleted per second.
//
//   node --import tsx scripts/bench/tidy-latency.ts [--rows 300000] [--seconds 8] [--rounds 3]
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import Database from "better-sqlite3";
import { pino } from "pino";
import { ManualClock } from "../../src/runtime/clock.js";
import { tidyOnce } from "../../src/server/tidy.js";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import { seedAgent } from "../../test/e2e-replicas/helpers/cluster.js";
import type { TestAgent } from "../../test/helpers/test-ca.js";
import { ISSUANCE_AUDIT_DATA, recordIssuance } from "./record-tx.js";

const { values } = parseArgs({
  options: {
    rows: { type: "string", default: "300000" },
    seconds: { type: "string", default: "8" },
    rounds: { type: "string", default: "3" },
  },
});
const ROWS = Number(values.rows);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);
const RETENTION = 7 * 86_400_000;
const CONC = 64;

const dir = mkdtempSync(join(tmpdir(), "tidy-lat-"));
const seedPath = join(dir, "seed.db");
const agents: TestAgent[] = [];
{
  const store = new SqliteStore({ path: seedPath });
  await store.migrate();
  for (let i = 0; i < CONC; i++) agents.push(await seedAgent(store, i + 1));
  await store.close();
  // Expired rows past the retention, as a long outage or a first start with retention leaves
  // them: direct SQL, one transaction (the columns of migration 0001, nonce unique).
  const db = new Database(seedPath);
  const ins = db.prepare(
    "INSERT INTO certificates (issuer_key_id, serial, agent_id, challenge_nonce, not_before, not_after, der, fingerprint, created_at) " +
      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
  );
  const issuer = Buffer.alloc(20, 1);
  const der = Buffer.alloc(600, 7);
  const old = Date.now() - RETENTION - 86_400_000;
  db.transaction(() => {
    for (let i = 0; i < ROWS; i++) {
      const id = Buffer.alloc(16);
      id.writeUInt32BE(i, 12);
      const nonce = Buffer.alloc(32);
      nonce.writeUInt32BE(i, 28);
      ins.run(
        issuer,
        id,
        agents[i % CONC]!.agentId,
        nonce,
        old - 300_000,
        old,
        der,
        Buffer.alloc(32, i % 256),
        old,
      );
    }
  })();
  db.pragma("wal_checkpoint(TRUNCATE)");
  db.close();
}

type Variant = "none" | "old" | "paced";
interface Result {
  p50: number;
  p99: number;
  max: number;
  txPerS: number;
  deletedPerS: number;
}

async function run(variant: Variant, round: number): Promise<Result> {
  const path = join(dir, `${variant}-${round}.db`);
  copyFileSync(seedPath, path);
  const store = new SqliteStore({ path });
  const clock = new ManualClock(Date.now());
  const issuerKeyId = Buffer.alloc(20, 2);
  const der = Buffer.alloc(600, 9);
  const lat: number[] = [];
  const end = performance.now() + SECONDS * 1000;
  let next = 0;
  // The real job (tidyOnce, its own batches and pauses), stopped at the window's end by the
  // first pause after it; what it deleted is counted in the database afterwards.
  const stop = new Error("window over");
  const tidy =
    variant === "none"
      ? Promise.resolve()
      : tidyOnce({
          store,
          clock,
          log: pino({ level: "silent" }),
          certificateRetention: RETENTION,
          maxBatches: 1_000_000,
          // "old": back to back (the 1 ms floor of a pause stands in for setImmediate).
          ...(variant === "old" ? { batch: 500, pauseRatio: 0 } : {}),
          sleep: (ms) =>
            performance.now() >= end ? Promise.reject(stop) : new Promise((r) => setTimeout(r, ms)),
        }).then(
          () => undefined,
          (e: unknown) => {
            if (e !== stop) throw e;
          },
        );
  await Promise.all(
    Array.from({ length: CONC }, async () => {
      while (performance.now() < end) {
        const agent = agents[next++ % agents.length]!;
        const t = performance.now();
        await store.tx((tx) =>
          recordIssuance(tx, clock, agent, { issuerKeyId, der, auditData: ISSUANCE_AUDIT_DATA }),
        );
        lat.push(performance.now() - t);
      }
    }),
  );
  await tidy;
  await store.close();
  const db = new Database(path, { readonly: true });
  const left = (
    db.prepare("SELECT COUNT(*) AS n FROM certificates WHERE not_after < ?").get(clock.now() - RETENTION) as {
      n: number;
    }
  ).n;
  db.close();
  const deleted = ROWS - left;
  rmSync(path, { force: true });
  rmSync(`${path}-wal`, { force: true });
  rmSync(`${path}-shm`, { force: true });
  lat.sort((a, b) => a - b);
  const q = (p: number) => lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]!;
  return {
    p50: q(0.5),
    p99: q(0.99),
    max: lat[lat.length - 1]!,
    txPerS: lat.length / SECONDS,
    deletedPerS: deleted / SECONDS,
  };
}

const variants: Variant[] = ["none", "old", "paced"];
const results = new Map<Variant, Result[]>(variants.map((v) => [v, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const v of r % 2 === 0 ? variants : [...variants].reverse()) {
    const res = await run(v, r);
    results.get(v)!.push(res);
    console.log(
      `round ${r + 1} ${v.padEnd(5)}  ${res.txPerS.toFixed(0)} tx/s  p50 ${res.p50.toFixed(1)} ms  p99 ${res.p99.toFixed(1)} ms  max ${res.max.toFixed(0)} ms  tidy ${res.deletedPerS.toFixed(0)} rows/s`,
    );
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
console.log(
  `\n${ROWS.toLocaleString()} expired rows, ${CONC} concurrent recording transactions, ${SECONDS} s, medians of ${ROUNDS} rounds`,
);
for (const v of variants) {
  const rs = results.get(v)!;
  console.log(
    `${v.padEnd(6)} ${med(rs.map((x) => x.txPerS))
      .toFixed(0)
      .padStart(6)} tx/s  p50 ${med(rs.map((x) => x.p50))
      .toFixed(1)
      .padStart(6)} ms  p99 ${med(rs.map((x) => x.p99))
      .toFixed(1)
      .padStart(6)} ms  max ${med(rs.map((x) => x.max))
      .toFixed(0)
      .padStart(5)} ms  tidy ${med(rs.map((x) => x.deletedPerS))
      .toFixed(0)
      .padStart(6)} rows/s`,
  );
}
rmSync(dir, { recursive: true, force: true });
