import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../fixtures/tpm/", import.meta.url));

/** Bytes of a file under test/fixtures/tpm/. */
export function fx(path: string): Buffer {
  return readFileSync(ROOT + path);
}

export function fxText(path: string): string {
  return fx(path).toString("utf8").trim();
}

export function fxJson<T = Record<string, unknown>>(path: string): T {
  return JSON.parse(fx(path).toString("utf8")) as T;
}

export const EK_TYPES = ["rsa2048", "ecc384", "ecc256"] as const;
export type EkType = (typeof EK_TYPES)[number];

/** A Random that replays fixed bytes, then fails loudly if asked for more. */
export function replayRandom(...chunks: Buffer[]): { bytes(n: number): Buffer } {
  const queue = [...chunks];
  return {
    bytes(n: number): Buffer {
      const next = queue.shift();
      if (!next || next.length !== n)
        throw new Error(`replayRandom: asked for ${n} bytes, had ${next?.length}`);
      return Buffer.from(next);
    },
  };
}
