import type { RotationDeps } from "../../authority/rotation-store.js";
import { isMayflyError } from "../../errors/index.js";
import { keyStoreConfigFor, openKeyStore } from "../../keys/open.js";
import { systemClock, systemRandom } from "../../runtime/clock.js";
import { devPassphrase } from "../../server/dev-passphrase.js";
import { EXIT } from "../exit-codes.js";
import { openConfiguredStore, resolveConfig } from "../open.js";
import { printJson, reportError } from "../output.js";

export const CONFIG_HELP = "configuration file (default: $MAYFLY_CONFIG or embedded defaults)";

/** Refusals: the command ran its checks and the step is not allowed (yet). Exit 1, like a failed check. */
const REFUSALS = new Set([
  "rotation.too_early",
  "rotation.retire_blocked",
  "rotation.nothing_prepared",
  "rotation.in_progress",
  "rotation.nothing_to_retire",
]);

/**
 * Opens the configured store and key store for a rotation command (audit actor "cli"),
 * runs it, and prints its result (or its refusal) as text or --json.
 */
export async function runCaCommand<T>(
  opts: { config?: string; json?: boolean },
  f: (deps: RotationDeps) => Promise<T>,
  text: (r: T) => string,
): Promise<void> {
  try {
    const rc = await resolveConfig(opts.config);
    const store = await openConfiguredStore(rc);
    try {
      const keyConfig = await keyStoreConfigFor(
        rc.config.keys,
        rc.keysDir,
        async () => rc.passphrase ?? (await devPassphrase(rc.keysDir)).ref,
      );
      const keys = await openKeyStore(keyConfig);
      try {
        const r = await f({
          store,
          keys,
          clock: systemClock,
          random: systemRandom,
          config: rc.config,
          actor: "cli",
        });
        if (opts.json) printJson({ ok: true, ...(r as object) });
        else process.stdout.write(text(r));
        process.exitCode = EXIT.ok;
      } finally {
        await keys.close();
      }
    } finally {
      await store.close();
    }
  } catch (err) {
    const code = reportError(err, opts.json === true);
    process.exitCode = isMayflyError(err) && REFUSALS.has(err.code) ? EXIT.checkFailed : code;
  }
}
