import { createHash } from "node:crypto";
import type { Random } from "../../../src/runtime/clock.js";

/**
 * A deterministic Random for tests: SHA-256(seed || counter) blocks. Same seed, same bytes,
 * so a live test's nonces and MakeCredential seeds repeat from run to run.
 */
export function seededRandom(seed: string): Random {
  let counter = 0;
  return {
    bytes(n: number): Buffer {
      const out: Buffer[] = [];
      for (let have = 0; have < n; have += 32) {
        const c = Buffer.alloc(4);
        c.writeUInt32BE(counter++);
        out.push(createHash("sha256").update(seed).update(c).digest());
      }
      return Buffer.concat(out).subarray(0, n);
    },
  };
}
