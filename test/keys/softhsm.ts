import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { access, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);

/** Debian's softhsm2 package puts the module here (scripts/test.sh installs it). */
export const SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so";

export interface TestToken {
  label: string;
  pin: string;
}

/**
 * A throwaway SoftHSM2 installation: its own softhsm2.conf and token directory in a
 * temp dir, selected through SOFTHSM2_CONF. SoftHSM reads that variable and scans its
 * token directory at C_Initialize, so tokens must exist before the first store opens
 * (or before the module is initialised again, once every store on it has closed).
 */
export class SoftHsm {
  #n = 0;
  private constructor(readonly dir: string) {}

  static async create(): Promise<SoftHsm> {
    // Fail loudly, never skip: the package is a test dependency (scripts/test.sh).
    await access(SOFTHSM_MODULE).catch(() => {
      throw new Error(`${SOFTHSM_MODULE} is missing: apt-get install softhsm2`);
    });
    const dir = await mkdtemp(join(tmpdir(), "mayfly-softhsm-"));
    const tokens = join(dir, "tokens");
    await mkdir(tokens, { mode: 0o700 });
    const conf = join(dir, "softhsm2.conf");
    await writeFile(
      conf,
      `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`,
    );
    process.env.SOFTHSM2_CONF = conf;
    return new SoftHsm(dir);
  }

  /** Initialises a fresh token in the first free slot, with a random user PIN. */
  async initToken(label = `t${++this.#n}-${randomBytes(3).toString("hex")}`): Promise<TestToken> {
    const pin = randomBytes(8).toString("hex");
    const soPin = randomBytes(8).toString("hex");
    await run(
      "softhsm2-util",
      ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", soPin],
      {
        env: { ...process.env },
      },
    );
    return { label, pin };
  }

  async cleanup(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}
