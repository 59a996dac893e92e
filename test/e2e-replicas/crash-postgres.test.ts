import { afterAll, expect, it } from "vitest";
import { useTestDatabase } from "../helpers/postgres.js";
import { type Cluster, makeCluster } from "./helpers/cluster.js";
import { runCrashScenario } from "./helpers/crash-run.js";

// kill -9 of CA replicas at random moments during sustained issuance, on PostgreSQL:
// three replica processes, one database (helpers/crash-run.ts says what is checked).

const db = useTestDatabase();
let cluster: Cluster | null = null;
afterAll(async () => {
  await cluster?.close();
});

it("loses and duplicates nothing across 20 kills of replicas (PostgreSQL)", async () => {
  cluster = await makeCluster(() => db().url);
  const seed = Number(process.env.MAYFLY_CRASH_SEED ?? Date.now() % 1_000_000);
  const stats = await runCrashScenario(cluster, {
    replicas: 3,
    kills: 20,
    workers: 3,
    agents: 8,
    deadlineMs: 60_000,
    seed,
  });
  console.log(`crash (postgres, seed ${seed}): ${JSON.stringify(stats)}`);
  expect(stats.kills).toBeGreaterThanOrEqual(20);
  expect(stats.received).toBeGreaterThan(20);
}, 100_000);
