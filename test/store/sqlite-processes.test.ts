import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/verify.js";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import { activation, bytes, seedAgent, T0 } from "./fixtures.js";

// Several processes on one SQLite file stand in for replicas: the in-process queue
// cannot help them, only BEGIN IMMEDIATE, conditional UPDATEs and primary keys can.

const dir = mkdtempSync(join(tmpdir(), "mayfly-procs-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const worker = fileURLToPath(new URL("./helpers/race-worker.ts", import.meta.url));

async function startWorker(
  path: string,
  nonceHex: string,
  appends: number,
  name: string,
  activationId?: string,
) {
  const child: ChildProcess = spawn(
    process.execPath,
    ["--import", "tsx", worker, path, nonceHex, `${appends}`, name, ...(activationId ? [activationId] : [])],
    {
      stdio: ["pipe", "pipe", "inherit"],
    },
  );
  let out = "";
  child.stdout?.setEncoding("utf8");
  child.stdout?.on("data", (s: string) => {
    out += s;
  });
  const exited = once(child, "exit");
  while (!out.includes("ready\n")) {
    if (child.exitCode !== null) throw new Error(`worker ${name} exited early`);
    await once(child.stdout!, "data");
  }
  return {
    go: () => child.stdin?.write("go\n"),
    result: async () => {
      const [code] = await exited;
      expect(code).toBe(0);
      return JSON.parse(out.split("\n").filter(Boolean).at(-1) ?? "null") as {
        won: boolean;
        activationWon: boolean | null;
        secret: string;
      };
    },
  };
}

it("one challenge and one activation have one winner each across processes, all share one secret; audit events form one chain", async () => {
  const path = join(dir, "shared.db");
  const nonce = bytes("nonce-shared");
  const setup = new SqliteStore({ path });
  await setup.migrate();
  await setup.tx(async (tx) => {
    await seedAgent(tx, "a1");
    await tx.insertActivation(activation("act-shared"));
  });
  await setup.close();

  const workers = await Promise.all(
    Array.from({ length: 5 }, (_, i) =>
      startWorker(path, nonce.toString("hex"), 20, `replica-${i}`, "act-shared"),
    ),
  );
  for (const w of workers) w.go();
  const results = await Promise.all(workers.map((w) => w.result()));
  expect(results.filter((r) => r.won)).toHaveLength(1);
  expect(new Set(results.map((r) => r.secret)).size).toBe(1);
  const activationWinners = results.flatMap((r, i) => (r.activationWon ? [i] : []));
  expect(activationWinners).toHaveLength(1);

  const check = new SqliteStore({ path });
  expect(await verifyAuditChain(check)).toMatchObject({ ok: true, count: 100 });
  const certs = await check.tx((tx) => tx.listCertificatesByAgent("a1"));
  expect(certs).toHaveLength(1);
  expect(certs[0]).toMatchObject({ challengeNonce: nonce, createdAt: T0 + 1 });
  // The stored certificate is the winner's.
  const winner = results.findIndex((r) => r.won);
  expect(certs[0]!.der.toString()).toBe(`certificate of replica-${winner}`);
  const stored = await check.tx((tx) => tx.ensureSecret("challenge-key", Buffer.alloc(32)));
  expect(stored.toString("hex")).toBe(results[0]!.secret);
  expect(await check.tx((tx) => tx.getActivation("act-shared"))).toMatchObject({
    state: "succeeded",
    deviceId: `device-replica-${activationWinners[0]}`,
    completedAt: T0 + 1,
  });
  await check.close();
}, 60_000);
