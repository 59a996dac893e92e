// Issuances per second, side by side:
//   1. end to end over HTTPS (challenge + certificate, test-signed evidence): SQLite on
//      one node, PostgreSQL with one replica and with two replicas;
//   2. the recording transaction alone (insert the certificate, whose unique nonce
//      consumes the challenge, mark the agent, append the audit event) against
//      PostgreSQL, with each way of claiming the audit chain head, and without the audit
//      append at all: what the one chain costs.
// Medians of several runs. Loopback only; the database is a fresh one on the test
// server (MAYFLY_TEST_DATABASE_URL, else 127.0.0.1:5432, else a throwaway cluster).
//
//   node --import tsx scripts/bench-store.ts [--runs 3] [--seconds 4] [--concurrency 16] [--only e2e|tx]
import { createHash, randomBytes, sign } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { Agent as HttpsAgent, request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ManualClock } from "../src/runtime/clock.js";
import { PostgresStore } from "../src/store/postgres/index.js";
import { SqliteStore } from "../src/store/sqlite/index.js";
import type { Store } from "../src/store/store.js";
import { makeCluster, type Replica, seedAgent } from "../test/e2e-replicas/helpers/cluster.js";
import { createTestDatabase, stopTestServer } from "../test/helpers/postgres-server.js";
import { newAgentKey, type TestAgent } from "../test/helpers/test-ca.js";
import { recordIssuance } from "./bench/record-tx.js";

const { values: args } = parseArgs({
  options: {
    runs: { type: "string", default: "3" },
    seconds: { type: "string", default: "4" },
    concurrency: { type: "string", default: "16" },
    only: { type: "string" },
  },
});
const RUNS = Number(args.runs);
const SECONDS = Number(args.seconds);
const CONCURRENCY = Number(args.concurrency);
const AGENTS = 32;

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Runs `once` from `CONCURRENCY` loops for SECONDS after a 1 s warm-up; completions per second. */
async function rate(once: (worker: number) => Promise<void>): Promise<number> {
  let counting = false;
  let done = 0;
  let stop = false;
  const loops = Array.from({ length: CONCURRENCY }, async (_, w) => {
    while (!stop) {
      await once(w);
      if (counting) done++;
      // better-sqlite3 settles everything in microtasks: let the timers run.
      await new Promise((r) => setImmediate(r));
    }
  });
  await new Promise((r) => setTimeout(r, 1000));
  counting = true;
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  const n = done;
  const secs = (performance.now() - t0) / 1000;
  stop = true;
  await Promise.all(loops);
  return n / secs;
}

// --- 1. end to end ---------------------------------------------------------------

function post(agent: HttpsAgent, url: string, body: unknown): Promise<{ status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const payload = JSON.stringify(body);
    const req = request(
      url,
      { method: "POST", agent, headers: { "content-type": "application/json" } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString();
          try {
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) });
          } catch {
            reject(new Error(`${url}: ${res.statusCode} ${text.slice(0, 300)}`));
          }
        });
      },
    );
    req.on("error", reject);
    req.end(payload);
  });
}

async function e2e(storeUrl: (dir: string) => string, replicas: number): Promise<number> {
  const cluster = await makeCluster(storeUrl);
  try {
    const servers: Replica[] = [];
    for (let i = 0; i < replicas; i++) servers.push(await cluster.start(`r${i}`));
    const agents: TestAgent[] = [];
    for (let i = 0; i < AGENTS; i++) agents.push(await seedAgent(cluster.store, i + 1));
    // One CSR per agent, reused: the CA binds the nonce to the key, not to a fresh CSR.
    const keys = await Promise.all(agents.map(() => newAgentKey()));
    const tls = new HttpsAgent({ keepAlive: true, ca: cluster.rootPem(), maxSockets: CONCURRENCY });
    let next = 0;
    const once = async (w: number) => {
      const i = next++ % AGENTS;
      const agent = agents[i]!;
      const key = keys[i]!;
      const base = servers[w % servers.length]!.url;
      const ch = await post(tls, `${base}/v1/agents/${agent.agentId}/challenges`, {});
      if (ch.status !== 201) throw new Error(`challenge: ${ch.status} ${JSON.stringify(ch.json)}`);
      const nonce = Buffer.from((ch.json as { nonce: string }).nonce, "base64url");
      const extraData = createHash("sha256").update(nonce).update(key.spki).digest();
      const res = await post(tls, `${base}/v1/agents/${agent.agentId}/certificates`, {
        csr: key.csrDer.toString("base64url"),
        nonce: nonce.toString("base64url"),
        attestation: {
          format: "test-signed",
          extraData: extraData.toString("base64url"),
          signature: sign("sha256", extraData, agent.deviceKey).toString("base64url"),
        },
      });
      if (res.status !== 201) throw new Error(`issuance: ${res.status} ${JSON.stringify(res.json)}`);
    };
    const r = await rate(once);
    tls.destroy();
    return r;
  } finally {
    await cluster.close();
  }
}

// --- 2. the recording transaction ------------------------------------------------

async function recordTx(store: Store, withAudit: boolean): Promise<number> {
  await store.migrate();
  const agents: TestAgent[] = [];
  for (let i = 0; i < AGENTS; i++) agents.push(await seedAgent(store, i + 1));
  const clock = new ManualClock(Date.now());
  const issuer = randomBytes(20);
  const der = randomBytes(600);
  let next = 0;
  return rate(async () => {
    const agent = agents[next++ % AGENTS]!;
    // Minting a challenge writes nothing (a MAC'd nonce); the certificate row is the redemption.
    await store.tx((tx) => recordIssuance(tx, clock, agent, { issuerKeyId: issuer, der, audit: withAudit }));
  });
}

// --- main ------------------------------------------------------------------------

async function measure(label: string, run: () => Promise<number>, rows: string[][]) {
  const results: number[] = [];
  for (let i = 0; i < RUNS; i++) results.push(await run());
  const row = [label, median(results).toFixed(0), results.map((r) => r.toFixed(0)).join(" ")];
  rows.push(row);
  console.error(`  ${row[0]}: median ${row[1]}/s (${row[2]})`);
}

function table(title: string, rows: string[][]) {
  console.log(`\n${title}`);
  const w0 = Math.max(...rows.map((r) => r[0]!.length));
  console.log(`${"".padEnd(w0)}  median/s  runs`);
  for (const r of rows) console.log(`${r[0]!.padEnd(w0)}  ${r[1]!.padStart(8)}  ${r[2]}`);
}

const databases: { drop(): Promise<void> }[] = [];
const pgUrl = async () => {
  const db = await createTestDatabase();
  databases.push(db);
  return db.url;
};
const dirs: string[] = [];
const sqliteFile = () => {
  const d = mkdtempSync(join(tmpdir(), "mayfly-bench-"));
  dirs.push(d);
  return join(d, "mayfly.db");
};

try {
  console.error(
    `bench-store: ${RUNS} runs x ${SECONDS} s, ${CONCURRENCY} concurrent clients, ${AGENTS} agents`,
  );
  if (args.only !== "tx") {
    const rows: string[][] = [];
    await measure("SQLite, one node", () => e2e((d) => `sqlite:${join(d, "mayfly.db")}`, 1), rows);
    await measure(
      "PostgreSQL, one replica",
      async () => {
        const u = await pgUrl();
        return e2e(() => u, 1);
      },
      rows,
    );
    await measure(
      "PostgreSQL, two replicas",
      async () => {
        const u = await pgUrl();
        return e2e(() => u, 2);
      },
      rows,
    );
    table("issuances/s end to end (HTTPS, challenge + certificate, keep-alive)", rows);
  }
  if (args.only !== "e2e") {
    const rows: string[][] = [];
    const pg =
      (auditLock: "row" | "advisory" | "optimistic", withAudit = true) =>
      async () => {
        const store = new PostgresStore({
          connectionString: await pgUrl(),
          poolSize: CONCURRENCY,
          auditLock,
          maxAttempts: 100,
        });
        try {
          return await recordTx(store, withAudit);
        } finally {
          await store.close();
        }
      };
    const sqlite = (withAudit: boolean) => async () => {
      const store = new SqliteStore({ path: sqliteFile() });
      try {
        return await recordTx(store, withAudit);
      } finally {
        await store.close();
      }
    };
    await measure("PostgreSQL, no audit append", pg("row", false), rows);
    await measure("PostgreSQL, audit head row lock (default)", pg("row"), rows);
    await measure("PostgreSQL, audit advisory lock", pg("advisory"), rows);
    await measure("PostgreSQL, audit optimistic (seq conflict, retry)", pg("optimistic"), rows);
    await measure("SQLite, no audit append", sqlite(false), rows);
    await measure("SQLite, audit append", sqlite(true), rows);
    table("recording transactions/s (store only, one process)", rows);
  }
} finally {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  for (const db of databases) await db.drop().catch(() => undefined);
  await stopTestServer();
}
