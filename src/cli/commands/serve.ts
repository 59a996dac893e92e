import type { Command } from "commander";
import { EvidenceRegistry } from "../../evidence/registry.js";
import { systemClock, systemRandom } from "../../runtime/clock.js";
import { createLogger } from "../../server/logger.js";
import { startServer } from "../../server/start.js";
import { productionFormats } from "../formats.js";
import { resolveConfig } from "../open.js";

export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("run the CA over HTTPS (creates a development root on first start if allowed)")
    .option("-c, --config <file>", "configuration file (default: $MAYFLY_CONFIG or embedded defaults)")
    .action(async (opts: { config?: string }) => {
      const rc = await resolveConfig(opts.config);
      const log = createLogger(process.env.MAYFLY_LOG_LEVEL ?? rc.config.log.level);
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
    });
}
