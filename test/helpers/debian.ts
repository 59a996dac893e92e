import { execFileSync, spawnSync } from "node:child_process";
import { REPO } from "./fresh-checkout.js";

/**
 * Makes sure Debian packages a test uses as a real peer are installed: scripts/ensure-deps.sh
 * installs them when running as root (CI), or fails saying exactly what to install.
 */
export function ensureDebianPackages(packages: readonly string[]): void {
  const missing = packages.filter(
    (p) =>
      !/install ok installed/.test(
        spawnSync("dpkg-query", ["-W", `-f=${"$"}{Status}`, p], { encoding: "utf8" }).stdout ?? "",
      ),
  );
  if (missing.length === 0) return;
  execFileSync("bash", ["scripts/ensure-deps.sh", ...missing], {
    cwd: REPO,
    stdio: ["ignore", "inherit", "inherit"],
  });
}
