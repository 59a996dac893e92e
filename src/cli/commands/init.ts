import type { Command } from "commander";
import { fingerprint, loadOrCreateCa } from "../../authority/ca-state.js";
import { keyStoreConfigFor, openKeyStore } from "../../keys/open.js";
import { systemClock, systemRandom } from "../../runtime/clock.js";
import { devPassphrase } from "../../server/dev-passphrase.js";
import { EXIT } from "../exit-codes.js";
import { openConfiguredStore, resolveConfig } from "../open.js";
import { printJson } from "../output.js";

export function registerInit(program: Command): void {
  program
    .command("init")
    .description("create the CA's root and intermediate if the store has none, and print them")
    .option("-c, --config <file>", "configuration file (default: $MAYFLY_CONFIG or embedded defaults)")
    .option("--json", "print the result as JSON")
    .action(async (opts: { config?: string; json?: boolean }) => {
      const rc = await resolveConfig(opts.config);
      const store = await openConfiguredStore(rc);
      const keyConfig = await keyStoreConfigFor(
        rc.config.keys,
        rc.keysDir,
        async () => rc.passphrase ?? (await devPassphrase(rc.keysDir)).ref,
      );
      const keys = await openKeyStore(keyConfig);
      try {
        const { state, created } = await loadOrCreateCa({
          store,
          keys,
          clock: systemClock,
          random: systemRandom,
          config: { ...rc.config, ca: { ...rc.config.ca, createDevRoot: true } },
        });
        const out = {
          ok: true,
          created,
          dataDir: rc.dataDir,
          roots: state.roots.map((r) => ({ id: r.id, slot: r.slot, fingerprint: fingerprint(r.der) })),
          intermediates: state.intermediates.map((r) => ({
            id: r.id,
            slot: r.slot,
            fingerprint: fingerprint(r.der),
          })),
        };
        if (opts.json) printJson(out);
        else {
          process.stdout.write(`${created ? "created" : "already initialised"}: ${rc.dataDir}\n`);
          for (const r of out.roots) process.stdout.write(`root ${r.slot} ${r.fingerprint}\n`);
          for (const r of out.intermediates)
            process.stdout.write(`intermediate ${r.slot} ${r.fingerprint}\n`);
        }
        process.exitCode = EXIT.ok;
      } finally {
        await keys.close();
        await store.close();
      }
    });
}
