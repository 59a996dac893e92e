import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { ensureDir, writeFileAtomic } from "./files.js";
import type { Issued } from "./issuer.js";
import { hexHandle } from "./state.js";

// What `mayfly agent run --out DIR` leaves for servers and clients on the host:
//   cert.pem     the leaf
//   chain.pem    the intermediates a peer needs to reach a root (send with the leaf)
//   bundle.pem   the trust bundle: Mayfly roots and intermediates, to verify peers with; only
//                ever a bundle the agent verified (AgentTrust), never the issuance answer's PEM
//   key.pem      bound keys: PKCS#8, 0600
//   key.handle   tpm keys: the persistent TPM handle, e.g. 0x81000100 (tpm2 provider: handle:0x81000100)
// Each file is replaced atomically. The key goes first and cert.pem last, so a reader that
// follows cert.pem (or waits for --exec) finds the matching key already in place.

export const OUT_FILES = {
  cert: "cert.pem",
  chain: "chain.pem",
  bundle: "bundle.pem",
  key: "key.pem",
  keyHandle: "key.handle",
} as const;

const PUBLIC = 0o644;
const PRIVATE = 0o600;

export interface WriteOptions {
  /** bound keys: write key.pem (0600); default true. False keeps the key in memory only. */
  readonly writeKey?: boolean;
  /**
   * bundle.pem: the verified trust bundle (AgentTrust.pem) to write, when it differs from the
   * file. Absent or empty: bundle.pem is left as it is. The issuance answer's own `bundle` is
   * unsigned and never written.
   */
  readonly bundle?: string;
}

/** Writes bundle.pem when `pem` differs from it; true when it did. */
export async function writeBundleFile(dir: string, pem: string): Promise<boolean> {
  if (!pem) return false;
  const path = join(dir, OUT_FILES.bundle);
  const before = await readFile(path, "utf8").catch(() => null);
  if (before === pem) return false;
  await ensureDir(dir, 0o700);
  await writeFileAtomic(path, pem, PUBLIC);
  return true;
}

export async function writeIssued(dir: string, c: Issued, opts: WriteOptions = {}): Promise<void> {
  await ensureDir(dir, 0o700);
  if (opts.bundle) await writeBundleFile(dir, opts.bundle);
  await writeFileAtomic(join(dir, OUT_FILES.chain), c.chain.join(""), PUBLIC);
  if (c.keyResidency === "tpm") {
    if (c.keyHandle === undefined) throw new TypeError("a tpm certificate without its key handle");
    await writeFileAtomic(join(dir, OUT_FILES.keyHandle), `${hexHandle(c.keyHandle)}\n`, PUBLIC);
    await rm(join(dir, OUT_FILES.key), { force: true });
  } else {
    if (!c.privateKey) throw new TypeError("a bound certificate without its key");
    if (opts.writeKey ?? true) {
      const pem = c.privateKey.export({ type: "pkcs8", format: "pem" });
      await writeFileAtomic(join(dir, OUT_FILES.key), pem, PRIVATE);
    }
    await rm(join(dir, OUT_FILES.keyHandle), { force: true });
  }
  await writeFileAtomic(join(dir, OUT_FILES.cert), c.certificate, PUBLIC);
}
