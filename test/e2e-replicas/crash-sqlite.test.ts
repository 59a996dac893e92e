import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, expect, it } from "vitest";
import { challengeFromRow } from "../../src/store/sqlite/rows.js";
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
  let file = "";
  cluster = await makeCluster((dir) => {
    file = join(dir, "mayfly.db");
    return `sqlite:${file}`;
  });
  const seed = Number(process.env.MAYFLY_CRASH_SEED ?? Date.now() % 1_000_000);
  const stats = await runCrashScenario(cluster, {
    replicas: 3,
    kills: 20,
    workers: 3,
    agents: 8,
    deadlineMs: 60_000,
    seed,
    async listChallenges() {
      const raw = new Database(file, { readonly: true });
      try {
        const rows = raw
          .prepare("SELECT nonce, agent_id, created_at, expires_at, consumed_at FROM challenges")
          .all();
        return rows.map((r) => challengeFromRow(r as Record<string, unknown>));
      } finally {
        raw.close();
      }
    },
  });
  console.log(`crash (sqlite, seed ${seed}): ${JSON.stringify(stats)}`);
  expect(stats.kills).toBeGreaterThanOrEqual(20);
  expect(stats.received).toBeGreaterThan(20);
}, 100_000);
