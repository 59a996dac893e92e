// TEST ONLY: `mayfly serve` (the same composition root, startServer) with the test-only
// evidence format registered beside the TPM ones, as its own process, so that tests can
// run several replicas and kill -9 them. Usage: replica-server.ts CONFIG; the
// environment gives MAYFLY_DATA_DIR and MAYFLY_LISTEN. Prints one JSON line
// {"url", "port", "pid"} on stdout when it is serving.
import { pino } from "pino";
import { loadConfig } from "../../../src/config/index.js";
import { EvidenceRegistry } from "../../../src/evidence/registry.js";
import { tpmFormats } from "../../../src/evidence/tpm-formats.js";
import { systemClock, systemRandom } from "../../../src/runtime/clock.js";
import { startServer } from "../../../src/server/start.js";
import { testSignedFormat } from "../../helpers/test-evidence.js";

const [configPath] = process.argv.slice(2);
if (!configPath) throw new Error("usage: replica-server.ts CONFIG");
const rc = await loadConfig(configPath, process.env);
const log = pino({ level: process.env.MAYFLY_LOG_LEVEL ?? "warn" }, pino.destination(2));
const evidence = new EvidenceRegistry([testSignedFormat, ...tpmFormats()]);
const running = await startServer(rc, { clock: systemClock, random: systemRandom, log, evidence });
process.stdout.write(`${JSON.stringify({ url: running.url, port: running.port, pid: process.pid })}\n`);
const stop = async () => {
  await running.close();
  process.exit(0);
};
process.once("SIGTERM", () => void stop());
process.once("SIGINT", () => void stop());
