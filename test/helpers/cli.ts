import { execFile } from "node:child_process";
import { join } from "node:path";
import { REPO } from "./fresh-checkout.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the mayfly CLI from source (tsx), as a separate process. */
export function mayfly(args: string[], env: Record<string, string> = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", join(REPO, "src/cli/main.ts"), ...args],
      { cwd: REPO, env: { ...process.env, MAYFLY_LOG_LEVEL: "silent", ...env }, encoding: "utf8" },
      (err, stdout, stderr) => {
        const code = err
          ? typeof (err as { code?: unknown }).code === "number"
            ? (err as { code: number }).code
            : 1
          : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
