// scripts/bench-record.ts "full" as an A/B of two source trees in one process: each tree's
// SqliteStore and recording transaction, one store each, rounds alternating A B, B A, ...
// so that both see the same load from whatever else runs on the machine (separate
// processes run seconds apart, and their CPU per issuance moved by ±30% on a shared
// 2-core box). Prints CPU µs per issuance per round, the medians and the median of the
// paired differences.
//
//   node --import tsx scripts/bench/record-ab.ts /work/main /work/wt-x [pairs=12] [N=2000]
//
// OPTS_A / OPTS_B: JSON merged into that side's SqliteStoreOptions, e.g.
// OPTS_B='{"checkpointIntervalMs":500}'. PRAGMAS_B="cache_size=-65536;...": run on that
// side's write connection before migrate.
import { randomBytes } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
// The same audit data for every tree measured (an older tree's record-tx.ts may lack it).
import { ISSUANCE_AUDIT_DATA } from "./record-tx.js";

interface Tx {
  getAgent(id: string): Promise<{ id: string; ownerId: string; deviceId: string } | null>;
  getOwner(id: string): Promise<unknown>;
  getDevice(id: string): Promise<unknown>;
  getBinding(id: string): Promise<unknown>;
}
interface Store {
  migrate(): Promise<void>;
  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  tx<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

const [dirA, dirB] = [process.argv[2], process.argv[3]];
if (!dirA || !dirB) throw new Error("usage: record-ab.ts DIR_A DIR_B [pairs] [N]");
const pairs = Number(process.argv[4] ?? 12);
const N = Number(process.argv[5] ?? 2000);

async function side(dir: string, label: "A" | "B") {
  const root = resolve(dir);
  const { SqliteStore } = await import(`${root}/src/store/sqlite/index.ts`);
  const { recordIssuance } = await import(`${root}/scripts/bench/record-tx.ts`);
  const { seedAgent } = await import(`${root}/test/e2e-replicas/helpers/cluster.ts`);
  const { ManualClock } = await import(`${root}/src/runtime/clock.ts`);
  const opts = {
    path: join(mkdtempSync(join(tmpdir(), `rec-ab${label}-`)), "m.db"),
    ...JSON.parse(process.env[`OPTS_${label}`] ?? "{}"),
  };
  const store = new SqliteStore(opts) as Store;
  const db = (store as unknown as { db: { pragma(s: string): unknown } }).db;
  for (const p of (process.env[`PRAGMAS_${label}`] ?? "").split(";").filter(Boolean)) db.pragma(p);
  await store.migrate();
  const agents: { agentId: string }[] = [];
  for (let i = 0; i < 256; i++) agents.push(await seedAgent(store, i + 1));
  const clock = new ManualClock(Date.now());
  const issuerKeyId = randomBytes(20);
  const der = randomBytes(600);

  let next = 0;
  async function one(): Promise<void> {
    const agent = agents[next++ % agents.length]!;
    await store.read(async (tx) => {
      const a = await tx.getAgent(agent.agentId);
      await Promise.all([tx.getOwner(a!.ownerId), tx.getDevice(a!.deviceId), tx.getBinding(a!.id)]);
    });
    await store.tx((tx) =>
      recordIssuance(tx, clock, agent, { issuerKeyId, der, auditData: ISSUANCE_AUDIT_DATA }),
    );
  }
  const rates: number[] = [];
  async function round(): Promise<number> {
    let done = 0;
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (done < N) {
          done++;
          await one();
        }
      }),
    );
    const c = process.cpuUsage(c0);
    rates.push(N / ((performance.now() - t0) / 1000));
    return (c.user + c.system) / N;
  }
  return { round, store, rates };
}

const median = (x: number[]) => {
  const s = [...x].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const A = await side(dirA, "A");
const B = await side(dirB, "B");
await A.round(); // warm-up, not counted
await B.round();
const ra: number[] = [];
const rb: number[] = [];
for (let i = 0; i < pairs; i++) {
  if (i % 2 === 0) {
    ra.push(await A.round());
    rb.push(await B.round());
  } else {
    rb.push(await B.round());
    ra.push(await A.round());
  }
}
console.log("A", ra.map((x) => x.toFixed(0)).join(" "));
console.log("B", rb.map((x) => x.toFixed(0)).join(" "));
console.log(
  `CPU µs/issuance: A median ${median(ra).toFixed(1)}, B median ${median(rb).toFixed(1)}, ` +
    `paired B-A median ${median(ra.map((a, i) => rb[i]! - a)).toFixed(1)}; ` +
    `tx/s: A ${median(A.rates.slice(1)).toFixed(0)}, B ${median(B.rates.slice(1)).toFixed(0)}`,
);
await A.store.close();
await B.store.close();
