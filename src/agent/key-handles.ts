import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { AGENT_CODES, AgentError } from "./errors.js";
import { ensureDir } from "./files.js";
import { hexHandle } from "./state.js";

// Each agent with TPM-resident keys on a device needs its own two persistent handles, or two
// agents would evict each other's keys. Pairs are claimed in the state directory, one file per
// pair named by its first handle and holding the agent id, created exclusively: two agents
// starting at once cannot claim the same pair. An agent finds its own claim again next run.

export const KEY_HANDLE_BASE = 0x81000100;
const MAX_PAIRS = 512;
export const KEY_HANDLES_DIR = "key-handles";

export async function claimKeyHandles(
  stateDir: string,
  agentId: string,
  avoid: readonly number[] = [],
): Promise<[number, number]> {
  const dir = join(stateDir, KEY_HANDLES_DIR);
  await ensureDir(dir, 0o700, true);
  for (let i = 0; i < MAX_PAIRS; i++) {
    const base = KEY_HANDLE_BASE + 2 * i;
    if (avoid.includes(base) || avoid.includes(base + 1)) continue;
    const file = join(dir, hexHandle(base));
    try {
      await writeFile(file, `${agentId}\n`, { flag: "wx", mode: 0o600 });
      return [base, base + 1];
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      if ((await readFile(file, "utf8")).trim() === agentId) return [base, base + 1];
    }
  }
  throw new AgentError(
    AGENT_CODES.usage,
    `no free pair of key handles from ${hexHandle(KEY_HANDLE_BASE)}: use --key-handles`,
  );
}
