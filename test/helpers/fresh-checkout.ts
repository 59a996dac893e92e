import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const REPO = join(dirname(fileURLToPath(import.meta.url)), "..", "..");

/**
 * Copies the files git would check out (tracked, plus new files not ignored) into
 * `dest`: a fresh clone of the working tree, without node_modules, dist or .mayfly.
 * Copying rather than `git clone` keeps uncommitted work testable during development;
 * in CI the working tree is itself a clean clone.
 */
export function freshCheckout(dest: string): void {
  const files = execFileSync("git", ["ls-files", "-co", "--exclude-standard", "-z"], {
    cwd: REPO,
    encoding: "utf8",
  })
    .split("\0")
    .filter(Boolean);
  for (const f of files) {
    mkdirSync(dirname(join(dest, f)), { recursive: true });
    try {
      cpSync(join(REPO, f), join(dest, f));
    } catch (e) {
      // A file deleted in the working tree but still tracked: a clone would have it, the tree doesn't.
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }
}
