// CPU per issuance of the store's part alone, in one process, at concurrency 64: the
// pre-read (store.readIssuanceFacts) and the recording transaction (re-read, certificate row carrying
// the nonce, agent mark, audit append), with SQLite durability "full". Variants: "full",
// "noread" (without the pre-read). (Builds before migration 0011 also inserted a
// redeemed-challenge row, and had a "nochallenge" variant without it.)
//
//   node --import tsx scripts/bench-record.ts [full|noread]
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ManualClock } from "../src/runtime/clock.js";
import { SqliteStore } from "../src/store/sqlite/index.js";
import { seedAgent } from "../test/e2e-replicas/helpers/cluster.js";
import type { TestAgent } from "../test/helpers/test-ca.js";
import { ISSUANCE_AUDIT_DATA, recordIssuance } from "./bench/record-tx.js";

const variant = process.argv[2] ?? "full";
if (variant !== "full" && variant !== "noread") throw new Error(`unknown variant ${variant}: full or noread`);
const dir = mkdtempSync(join(tmpdir(), "rec-"));
// FACTS_CACHE=0 turns the issuance-facts cache off (the A side of an A/B).
const store = new SqliteStore({
  path: join(dir, "m.db"),
  factsCacheSize: process.env.FACTS_CACHE === undefined ? undefined : Number(process.env.FACTS_CACHE),
});
await store.migrate();
const agents: TestAgent[] = [];
for (let i = 0; i < 256; i++) agents.push(await seedAgent(store, i + 1));
const clock = new ManualClock(Date.now());
const issuerKeyId = randomBytes(20);
const der = randomBytes(600);
let next = 0;
async function one() {
  const agent = agents[next++ % agents.length]!;
  // As issue.ts reads them before deciding (a cache hit: one statement, no transaction).
  if (variant !== "noread") await store.readIssuanceFacts(agent.agentId);
  await store.tx((tx) =>
    recordIssuance(tx, clock, agent, {
      issuerKeyId,
      der,
      auditData: ISSUANCE_AUDIT_DATA,
    }),
  );
}
for (let round = 0; round < 4; round++) {
  const N = 4000;
  let done = 0;
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (done < N) {
        done++;
        await one();
      }
    }),
  );
  const c = process.cpuUsage(c0);
  const ms = performance.now() - t0;
  console.log(
    variant,
    "round",
    round,
    ((N / ms) * 1000).toFixed(0),
    "tx/s",
    ((c.user + c.system) / N).toFixed(0),
    "µs CPU/tx (user",
    (c.user / N).toFixed(0),
    ")",
  );
}
await store.close();
// Each run's database is ~40 MB of WAL and rows: nothing to keep.
rmSync(dir, { recursive: true, force: true });
