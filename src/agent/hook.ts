import { spawn } from "node:child_process";

// `--exec CMD`: after each rotation, a reload command (e.g. "systemctl reload nginx") runs
// through /bin/sh with the file locations in its environment. Its failure is reported, and
// the agent carries on: the new files are in place whatever the reload did.

export interface HookResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly output: string;
}

const MAX_OUTPUT = 64 * 1024;

export function runHook(
  command: string,
  env: Record<string, string>,
  timeoutMs = 60_000,
): Promise<HookResult> {
  return new Promise((resolve) => {
    const child = spawn("/bin/sh", ["-c", command], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    const take = (b: Buffer) => {
      if (output.length < MAX_OUTPUT) output += b.toString("utf8");
    };
    child.stdout.on("data", take);
    child.stderr.on("data", take);
    const timer = setTimeout(() => child.kill("SIGTERM"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, output: e.message });
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output: output.slice(0, MAX_OUTPUT) });
    });
  });
}
