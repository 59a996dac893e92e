import { chmod, mkdir, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

// Files other programs read while the agent rewrites them: each is written whole to a
// temporary name in the same directory, flushed, then renamed over the old one (rename is
// atomic within a filesystem), and the directory is flushed so the rename survives a crash.
// A reader sees the old file or the new one, never half of either.

let counter = 0;

export async function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${++counter}.tmp`);
  const fh = await open(tmp, "wx", mode);
  try {
    await fh.writeFile(data);
    // open()'s mode is filtered by the umask; the final mode must be exactly `mode`.
    await fh.chmod(mode);
    await fh.sync();
  } catch (e) {
    await fh.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await syncDir(dir);
}

async function syncDir(dir: string): Promise<void> {
  const d = await open(dir, "r");
  try {
    await d.sync();
  } catch {
    // Some filesystems refuse fsync on a directory; the rename itself has happened.
  } finally {
    await d.close();
  }
}

/**
 * Creates `dir` (and parents) with `mode` if missing. With `enforce`, an existing directory
 * is made exactly `mode` too (the state directory); without, its owner's choice stands.
 */
export async function ensureDir(dir: string, mode: number, enforce = false): Promise<void> {
  const created = await mkdir(dir, { recursive: true, mode });
  if (enforce || created !== undefined) await chmod(dir, mode);
}
