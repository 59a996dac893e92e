import { swtpmTransport, TPM_HT, TpmClient } from "../../../src/tpm/client/index.js";
import { seededRandom } from "../helpers/seeded-random.js";
import type { Swtpm } from "../helpers/swtpm.js";

/** A client on a test swtpm's server socket, with deterministic session nonces. */
export function clientFor(tpm: Swtpm, seed: string): TpmClient {
  return new TpmClient(swtpmTransport(tpm.server, { timeoutMs: 20_000 }), { random: seededRandom(seed) });
}

/** Transient objects and loaded sessions still in the TPM: a test must leave none behind. */
export async function leftovers(tpm: TpmClient): Promise<number[]> {
  return [...(await tpm.listHandles(TPM_HT.TRANSIENT)), ...(await tpm.listHandles(TPM_HT.HMAC_SESSION))];
}
