import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { type Cluster, makeCluster } from "./helpers/cluster.js";
import { runCrashScenario } from "./helpers/crash-run.js";

// kill -9 of CA processes at random moments during sustained issuance, on SQLite: one
// node, three server processes on one database file (WAL; BEGIN IMMEDIATE serialises
// their writes), so that one is always serving while another restarts.

let cluster: Cluster | null = null;
afterAll(async () => {
  await cluster?.close();
});

it("loses and duplicates nothing across 20 kills of CA processes (SQLite)", async () => {
  cluster = await makeCluster((dir) => `sqlite:${join(dir, "mayfly.db")}`);
  const seed = Number(process.env.MAYFLY_CRASH_SEED ?? Date.now() % 1_000_000);
  const stats = await runCrashScenario(cluster, {
    replicas: 3,
    kills: 20,
    workers: 3,
    agents: 8,
    deadlineMs: 60_000,
    seed,
  });
  console.log(`crash (sqlite, seed ${seed}): ${JSON.stringify(stats)}`);
  expect(stats.kills).toBeGreaterThanOrEqual(20);
  expect(stats.received).toBeGreaterThan(20);
}, 100_000);
