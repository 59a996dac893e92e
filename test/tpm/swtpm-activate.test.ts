import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { systemRandom } from "../../src/runtime/clock.js";
import {
  encodeTpm2ToolsCredential,
  makeCredential,
  objectName,
  TPM_ALG,
  TPMA_OBJECT,
  unmarshalTpm2bPublic,
} from "../../src/tpm/index.js";
import { Swtpm } from "./helpers/swtpm.js";

// Live: a real TPM (swtpm) runs TPM2_ActivateCredential on credentials made by our
// MakeCredential, for the three EK templates. Needs the Debian packages in SWTPM_DEBIAN_PACKAGES;
// it fails (never skips) when they are missing.

const CASES: Array<[string, string, string[]]> = [
  ["rsa2048 (L-1)", "rsa", ["-G", "rsa", "-g", "sha256", "-s", "rsassa"]],
  ["ecc384 (H-3)", "ecc384", ["-G", "ecc", "-g", "sha256", "-s", "ecdsa"]],
  ["ecc256 (L-2)", "ecc", ["-G", "ecc", "-g", "sha256", "-s", "ecdsa"]],
];

describe("live swtpm: ActivateCredential returns the secret of our MakeCredential", () => {
  let tpm: Swtpm;
  beforeAll(async () => {
    tpm = await Swtpm.start();
  }, 30_000);
  afterAll(async () => {
    await tpm?.stop();
  });

  function activate(
    t: string,
    ekUserWithAuth: boolean,
    credFile: string,
  ): { status: number | null; stderr: string; out: Buffer } {
    const out = `${t}.out`;
    const args = ["-c", `${t}.ak.ctx`, "-C", `${t}.ek.ctx`, "-i", credFile, "-o", out];
    let r: { status: number | null; stderr: string };
    if (ekUserWithAuth) {
      r = tpm.tryRun("tpm2_activatecredential", args);
    } else {
      // L-1 / L-2 EKs have userWithAuth clear: authorise with PolicySecret(endorsement) (G10).
      tpm.run("tpm2_startauthsession", ["--policy-session", "-S", `${t}.s.ctx`]);
      tpm.run("tpm2_policysecret", ["-S", `${t}.s.ctx`, "-c", "e"]);
      r = tpm.tryRun("tpm2_activatecredential", [...args, "-P", `session:${t}.s.ctx`]);
      tpm.tryRun("tpm2_flushcontext", [`${t}.s.ctx`]);
    }
    tpm.flush();
    return {
      status: r.status,
      stderr: r.stderr,
      out: r.status === 0 ? readFileSync(join(tpm.dir, out)) : Buffer.alloc(0),
    };
  }

  it.each(CASES)(
    "%s",
    (_, ekAlg, akArgs) => {
      const t = ekAlg;
      tpm.run("tpm2_createek", ["-G", ekAlg, "-c", `${t}.ek.ctx`, "-u", `${t}.ek.pub`, "-f", "tss"]);
      tpm.flush();
      tpm.run("tpm2_createak", [
        "-C",
        `${t}.ek.ctx`,
        "-c",
        `${t}.ak.ctx`,
        ...akArgs,
        "-u",
        `${t}.ak.pub`,
        "-f",
        "tss",
        "-n",
        `${t}.ak.name`,
      ]);
      tpm.flush();
      const ek = unmarshalTpm2bPublic(readFileSync(join(tpm.dir, `${t}.ek.pub`)));
      const akName = objectName(unmarshalTpm2bPublic(readFileSync(join(tpm.dir, `${t}.ak.pub`))));
      expect(akName.equals(readFileSync(join(tpm.dir, `${t}.ak.name`)))).toBe(true);
      if (ekAlg === "ecc384") expect(ek.nameAlg).toBe(TPM_ALG.SHA384);
      const userWithAuth = (ek.objectAttributes & TPMA_OBJECT.userWithAuth) !== 0;

      const secret = systemRandom.bytes(32);
      const cred = makeCredential(ek, akName, secret, systemRandom);
      writeFileSync(join(tpm.dir, `${t}.cred`), encodeTpm2ToolsCredential(cred));
      const ok = activate(t, userWithAuth, `${t}.cred`);
      expect(ok.status).toBe(0);
      expect(ok.out.equals(secret)).toBe(true);

      // Bound to the EK's Name instead of the AK's: the TPM must refuse (TPM_RC_INTEGRITY).
      const wrong = makeCredential(ek, objectName(ek), secret, systemRandom);
      writeFileSync(join(tpm.dir, `${t}.wrong.cred`), encodeTpm2ToolsCredential(wrong));
      const refused = activate(t, userWithAuth, `${t}.wrong.cred`);
      expect(refused.status).not.toBe(0);
      expect(refused.stderr).toMatch(/0x1df|integrity/i);
    },
    30_000,
  );
});
