import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// One private swtpm per test file, following shared/tpm/tpm-flow.sh: a fresh state dir, unix
// sockets (no ports to collide on, never the default 2321: gotcha G4), startup-clear, and an
// orderly TPM2_Shutdown before stopping only the PID started here (G14, G18).

export const SWTPM_DEBIAN_PACKAGES = ["swtpm", "swtpm-tools", "tpm2-tools", "libtss2-tcti-swtpm0"];
const TOOLS = ["swtpm", "swtpm_ioctl", "tpm2_createek", "tpm2_createak", "tpm2_activatecredential"];

function which(cmd: string): boolean {
  return spawnSync("sh", ["-c", `command -v ${cmd}`]).status === 0;
}

export class Swtpm {
  private constructor(
    readonly dir: string,
    private readonly proc: ChildProcess,
    private readonly env: NodeJS.ProcessEnv,
  ) {}

  static async start(): Promise<Swtpm> {
    const missing = TOOLS.filter((t) => !which(t));
    if (missing.length > 0) {
      throw new Error(
        `swtpm tests need ${missing.join(", ")}: apt-get install -y ${SWTPM_DEBIAN_PACKAGES.join(" ")}`,
      );
    }
    const dir = mkdtempSync(join(tmpdir(), "mayfly-swtpm-"));
    mkdirSync(join(dir, "state"));
    const sock = join(dir, "sock");
    const proc = spawn(
      "swtpm",
      [
        "socket",
        "--tpm2",
        "--tpmstate",
        `dir=${join(dir, "state")}`,
        "--server",
        `type=unixio,path=${sock}`,
        "--ctrl",
        `type=unixio,path=${sock}.ctrl`,
        "--flags",
        "not-need-init,startup-clear",
      ],
      { stdio: "ignore" },
    );
    const env = { ...process.env, TPM2TOOLS_TCTI: `swtpm:path=${sock}` };
    const tpm = new Swtpm(dir, proc, env);
    for (let i = 0; i < 100; i++) {
      if (proc.exitCode !== null) break;
      if (existsSync(sock) && tpm.tryRun("tpm2_getrandom", ["1"]).status === 0) return tpm;
      await new Promise((r) => setTimeout(r, 50));
    }
    await tpm.stop();
    throw new Error("swtpm did not become ready");
  }

  /** Runs a tpm2-tools command in the TPM's dir; throws with its stderr on failure. */
  run(tool: string, args: string[]): Buffer {
    return execFileSync(tool, args, { cwd: this.dir, env: this.env, stdio: ["ignore", "pipe", "pipe"] });
  }

  tryRun(tool: string, args: string[]): { status: number | null; stderr: string } {
    const r = spawnSync(tool, args, { cwd: this.dir, env: this.env, encoding: "utf8" });
    return { status: r.status, stderr: r.stderr };
  }

  /** swtpm has 3 transient slots and no resource manager: flush after every tool (G6). */
  flush(): void {
    this.tryRun("tpm2_flushcontext", ["-t"]);
    this.tryRun("tpm2_flushcontext", ["-s"]);
  }

  async stop(): Promise<void> {
    if (this.proc.exitCode === null) {
      this.tryRun("tpm2_shutdown", ["-c"]);
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.tryRun("swtpm_ioctl", ["--unix", join(this.dir, "sock.ctrl"), "-s"]);
      const timer = setTimeout(() => this.proc.kill(), 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
