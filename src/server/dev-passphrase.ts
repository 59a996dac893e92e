import { randomBytes } from "node:crypto";
import { link, mkdir, readFile, unlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SecretRef } from "../config/schema.js";

/**
 * Development convenience: with no passphrase configured, a random one is kept in
 * <keysDir>/passphrase (0600) beside the keys. That protects nothing against someone
 * who can read the directory, which is why start-up warns loudly; production
 * configs name a file on another volume or an environment variable.
 */
export async function devPassphrase(
  keysDir: string,
): Promise<{ ref: SecretRef; created: boolean; path: string }> {
  const path = join(keysDir, "passphrase");
  await mkdir(keysDir, { recursive: true, mode: 0o700 });
  try {
    await readFile(path);
    return { ref: { file: path }, created: false, path };
  } catch {
    // Replicas may start together: write a complete temp file, then link() it into place,
    // which fails if another process got there first, so nobody reads a half-written file.
    const temp = `${path}.${randomBytes(6).toString("hex")}.tmp`;
    await writeFile(temp, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600, flag: "wx" });
    try {
      await link(temp, path);
      return { ref: { file: path }, created: true, path };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      return { ref: { file: path }, created: false, path };
    } finally {
      await unlink(temp);
    }
  }
}
