import { type ChildProcess, execFileSync, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SwtpmEndpoint } from "../../../src/tpm/client/index.js";
import { manufacture } from "./swtpm-manufacture.js";
import { canConnect, freePortPair } from "./swtpm-ports.js";

export interface SwtpmStartOptions {
  /** Run swtpm_setup first: EK certificates (RSA-2048, P-384) in NV from a per-run CA. */
  readonly manufacture?: boolean;
  /** Listen on 127.0.0.1 TCP ports (a free pair, never 2321: G4) instead of unix sockets. */
  readonly tcp?: boolean;
  /**
   * Start without `--flags not-need-init,startup-clear`: the TPM stays off until someone
   * sends CMD_INIT and TPM2_Startup (what swtpmPowerOn does). Default false.
   */
  readonly poweredOff?: boolean;
}

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
    /** The server socket, as the client's swtpmTransport takes it; control is port+1 / .ctrl. */
    readonly server: SwtpmEndpoint = { path: join(dir, "sock") },
  ) {}

  /** The manufacturer CA of a manufactured TPM: root and intermediate PEM paths. */
  get caFiles(): { root: string; intermediate: string } {
    return {
      root: join(this.dir, "localca", "swtpm-localca-rootca-cert.pem"),
      intermediate: join(this.dir, "localca", "issuercert.pem"),
    };
  }

  static async start(opts: SwtpmStartOptions = {}): Promise<Swtpm> {
    const missing = TOOLS.filter((t) => !which(t));
    if (missing.length > 0) {
      throw new Error(
        `swtpm tests need ${missing.join(", ")}: apt-get install -y ${SWTPM_DEBIAN_PACKAGES.join(" ")}`,
      );
    }
    const dir = mkdtempSync(join(tmpdir(), "mayfly-swtpm-"));
    mkdirSync(join(dir, "state"));
    if (opts.manufacture) {
      try {
        manufacture(dir);
      } catch (e) {
        rmSync(dir, { recursive: true, force: true });
        throw e;
      }
    }
    const sock = join(dir, "sock");
    const server: SwtpmEndpoint = opts.tcp
      ? { host: "127.0.0.1", port: await freePortPair() }
      : { path: sock };
    const listen =
      "port" in server
        ? [
            `type=tcp,port=${server.port},bindaddr=127.0.0.1`,
            `type=tcp,port=${server.port + 1},bindaddr=127.0.0.1`,
          ]
        : [`type=unixio,path=${sock}`, `type=unixio,path=${sock}.ctrl`];
    const flags = opts.poweredOff ? [] : ["--flags", "not-need-init,startup-clear"];
    const proc = spawn(
      "swtpm",
      [
        "socket",
        "--tpm2",
        "--tpmstate",
        `dir=${join(dir, "state")}`,
        "--server",
        listen[0]!,
        "--ctrl",
        listen[1]!,
        ...flags,
      ],
      { stdio: "ignore" },
    );
    const tcti = "port" in server ? `swtpm:host=${server.host},port=${server.port}` : `swtpm:path=${sock}`;
    const env = { ...process.env, TPM2TOOLS_TCTI: tcti };
    const tpm = new Swtpm(dir, proc, env, server);
    for (let i = 0; i < 100; i++) {
      if (proc.exitCode !== null) break;
      // Powered off, only the sockets can answer; powered on, a real command must succeed.
      if (opts.poweredOff ? await canConnect(server) : tpm.ready()) return tpm;
      await new Promise((r) => setTimeout(r, 50));
    }
    await tpm.stop();
    throw new Error("swtpm did not become ready");
  }

  private ready(): boolean {
    if ("path" in this.server && !existsSync(this.server.path)) return false;
    return this.tryRun("tpm2_getrandom", ["1"]).status === 0;
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
      const ctrl =
        "port" in this.server
          ? ["--tcp", `${this.server.host}:${this.server.port + 1}`]
          : ["--unix", `${this.server.path}.ctrl`];
      this.tryRun("swtpm_ioctl", [...ctrl, "-s"]);
      const timer = setTimeout(() => this.proc.kill(), 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
