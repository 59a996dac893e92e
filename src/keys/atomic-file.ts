import { link, open, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Random } from "../runtime/clock.js";

/**
 * Crash-safe file publication for key material. The data is written to a dot-named
 * temp file (0600 from creation, so it is never briefly readable), fsynced, then
 * moved into place and the directory fsynced, so a crash leaves either no file or the
 * whole file, never a torn one.
 */
async function writeTemp(dir: string, data: string, random: Random): Promise<string> {
  const tmp = join(dir, `.tmp-${random.bytes(12).toString("hex")}`);
  const fh = await open(tmp, "wx", 0o600);
  try {
    await fh.writeFile(data);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(tmp, { force: true });
    throw e;
  }
  await fh.close();
  return tmp;
}

async function syncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * Publishes `name` only if it does not exist. link(2) fails with EEXIST atomically,
 * where rename(2) would silently replace: two processes generating the same label
 * cannot overwrite each other's key. Returns false if the name was taken.
 */
export async function publishNew(dir: string, name: string, data: string, random: Random): Promise<boolean> {
  const tmp = await writeTemp(dir, data, random);
  try {
    await link(tmp, join(dir, name));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  } finally {
    await rm(tmp, { force: true });
  }
  await syncDir(dir);
  return true;
}

/** Publishes `name`, replacing any previous file atomically. */
export async function publishReplace(dir: string, name: string, data: string, random: Random): Promise<void> {
  const tmp = await writeTemp(dir, data, random);
  try {
    await rename(tmp, join(dir, name));
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
  await syncDir(dir);
}

/** Reads a small text file, refusing anything that is not a regular file or is larger than `max`. */
export async function readSmallFile(path: string, max: number): Promise<string> {
  const st = await stat(path);
  if (!st.isFile()) throw Object.assign(new Error(`${path} is not a regular file`), { code: "ENOTFILE" });
  if (st.size > max) throw Object.assign(new Error(`${path} is larger than ${max} bytes`), { code: "EFBIG" });
  return readFile(path, "utf8");
}
