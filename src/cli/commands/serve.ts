import cluster from "node:cluster";
import type { Command } from "commander";
import { MayflyError } from "../../errors/index.js";
import { EvidenceRegistry } from "../../evidence/registry.js";
import { systemClock, systemRandom } from "../../runtime/clock.js";
import { createLogger } from "../../server/logger.js";
import { startServer } from "../../server/start.js";
import { productionFormats } from "../formats.js";
import { resolveConfig } from "../open.js";

function workerCount(text: string | undefined): number {
  const n = Number(text ?? process.env.MAYFLY_WORKERS ?? 1);
  if (!Number.isInteger(n) || n < 1 || n > 64) {
    throw new MayflyError("config.invalid", "--workers must be a whole number from 1 to 64", {
      field: "workers",
    });
  }
  return n;
}

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the CA over HTTPS (creates a development root on first start if allowed)")
    .option("-c, --config <file>", "configuration file (default: $MAYFLY_CONFIG or embedded defaults)")
    .option(
      "-w, --workers <n>",
      "processes serving the one listener and sharing the store (default: $MAYFLY_WORKERS or 1)",
    )
    .action(async (opts: { config?: string; workers?: string }) => {
      const workers = workerCount(opts.workers);
      const rc = await resolveConfig(opts.config);
      const log = createLogger(process.env.MAYFLY_LOG_LEVEL ?? rc.config.log.level);
      if (workers > 1 && cluster.isPrimary) {
        await superviseWorkers(workers, log);
        return;
      }
      const evidence = new EvidenceRegistry(productionFormats());
      log.info({ formats: evidence.names() }, "attestation formats");
      const running = await startServer(rc, { clock: systemClock, random: systemRandom, log, evidence });
      const stop = async (signal: string) => {
        log.info({ signal }, "shutting down");
        await running.close();
        process.exit(0);
      };
      process.once("SIGINT", () => void stop("SIGINT"));
      process.once("SIGTERM", () => void stop("SIGTERM"));
      if (cluster.isWorker) process.send?.({ mayfly: "ready", url: running.url });
    });
}

/**
 * Several processes behind one listening socket (node:cluster), one event loop per core.
 * Each worker is a complete server over the same store: SQLite in WAL mode, where BEGIN
 * IMMEDIATE serialises writers across processes, so a challenge still yields one
 * certificate, serials stay unique and the audit chain has one head; every worker reads
 * the one challenge key from the store, so a nonce minted by one verifies at another. The first worker
 * starts alone, so a development root is created once; the others load it. A worker that
 * dies takes the service down rather than leaving it half-served.
 */
async function superviseWorkers(n: number, log: ReturnType<typeof createLogger>): Promise<void> {
  const ready = (w: ReturnType<typeof cluster.fork>) =>
    new Promise<void>((resolve, reject) => {
      w.on("message", (m: { mayfly?: string }) => {
        if (m?.mayfly === "ready") resolve();
      });
      w.once("exit", (code) => reject(new Error(`worker ${w.process.pid} exited with ${code}`)));
    });
  let stopping = false;
  cluster.on("exit", (w, code, signal) => {
    if (stopping) return;
    log.error({ pid: w.process.pid, code, signal }, "a worker died; stopping");
    stopping = true;
    for (const other of Object.values(cluster.workers ?? {})) other?.kill("SIGTERM");
    process.exitCode = 1;
  });
  await ready(cluster.fork());
  await Promise.all(Array.from({ length: n - 1 }, () => ready(cluster.fork())));
  log.info(
    { workers: n, pids: Object.values(cluster.workers ?? {}).map((w) => w?.process.pid) },
    "workers ready",
  );
  const stop = (signal: string) => {
    stopping = true;
    log.info({ signal }, "shutting down workers");
    for (const w of Object.values(cluster.workers ?? {})) w?.kill(signal as NodeJS.Signals);
  };
  process.once("SIGINT", () => stop("SIGINT"));
  process.once("SIGTERM", () => stop("SIGTERM"));
}
