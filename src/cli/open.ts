import { mkdir } from "node:fs/promises";
import { loadConfig, type ResolvedConfig } from "../config/index.js";
import { openStore } from "../store/open.js";
import type { Store } from "../store/store.js";

/** The config file a command uses: --config, else MAYFLY_CONFIG, else the embedded defaults. */
export async function resolveConfig(path: string | undefined): Promise<ResolvedConfig> {
  return loadConfig(path ?? process.env.MAYFLY_CONFIG ?? null);
}

export async function openConfiguredStore(rc: ResolvedConfig): Promise<Store> {
  await mkdir(rc.dataDir, { recursive: true, mode: 0o700 });
  const store = await openStore(rc.storeUrl, { durability: rc.config.store.durability });
  await store.migrate();
  return store;
}
