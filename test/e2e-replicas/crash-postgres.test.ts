import pg from "pg";
import { afterAll, expect, it } from "vitest";
import { challengeFromRow } from "../../src/store/sqlite/rows.js";
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
    async listChallenges() {
      const c = new pg.Client({ connectionString: db().url });
      await c.connect();
      try {
        const r = await c.query(
          "SELECT nonce, agent_id, created_at, expires_at, consumed_at FROM challenges",
        );
        return r.rows.map((row) =>
          challengeFromRow({
            nonce: row.nonce, // BYTEA: a Buffer; BIGINT: text, hence Number()
            agent_id: row.agent_id,
            created_at: Number(row.created_at),
            expires_at: Number(row.expires_at),
            consumed_at: row.consumed_at === null ? null : Number(row.consumed_at),
          }),
        );
      } finally {
        await c.end();
      }
    },
  });
  console.log(`crash (postgres, seed ${seed}): ${JSON.stringify(stats)}`);
  expect(stats.kills).toBeGreaterThanOrEqual(20);
  expect(stats.received).toBeGreaterThan(20);
}, 100_000);
