import { readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Pkcs11KeyStore } from "../../src/keys/pkcs11-keystore.js";
import { mayfly } from "../helpers/cli.js";
import { openssl, writeTemp } from "../helpers/openssl.js";
import { issueVia, startTestCa } from "../helpers/test-ca.js";
import { SOFTHSM_MODULE, SoftHsm, type TestToken } from "./softhsm.js";

// SoftHSM reads SOFTHSM2_CONF (set by SoftHsm.create) at C_Initialize, which the CA's
// key store runs when it opens: the tokens exist before any store does.
let hsm: SoftHsm;
beforeAll(async () => {
  hsm = await SoftHsm.create();
});
afterAll(async () => {
  await hsm.cleanup();
});

const openOn = (t: TestToken): Promise<Pkcs11KeyStore> =>
  Pkcs11KeyStore.open({ module: SOFTHSM_MODULE, tokenLabel: t.label, pin: t.pin });

describe("pkcs11: a CA whose root and intermediate live in the token", () => {
  let token: TestToken;
  let cliToken: TestToken;
  let pinFile: string;
  beforeAll(async () => {
    token = await hsm.initToken("mayfly-ca");
    cliToken = await hsm.initToken("mayfly-cli");
    pinFile = join(hsm.dir, "pin");
    await writeFile(pinFile, `${token.pin}\n`, { mode: 0o600 });
  });

  const config = (t: TestToken, pin: string) => `
keys:
  kind: pkcs11
  pkcs11:
    module: ${SOFTHSM_MODULE}
    tokenLabel: ${t.label}
    pin: { file: ${pin} }
profiles:
  default:
    formats: [test-signed]
    keyResidency: [bound]
`;

  it("issues a leaf that openssl verifies strictly, with no key material on disk", async () => {
    const ca = await startTestCa(config(token, pinFile));
    try {
      expect(ca.running.keys.kind).toBe("pkcs11");
      const labels = await ca.running.keys.list();
      expect(labels).toHaveLength(2);
      expect(labels.some((l) => l.startsWith("root-"))).toBe(true);
      expect(labels.some((l) => l.startsWith("intermediate-"))).toBe(true);

      const agent = await ca.seedAgent();
      const { res } = await issueVia(ca, agent);
      expect(res.status).toBe(201);
      const out = res.json as { certificate: string; chain: string[] };
      const leaf = await writeTemp(ca.dir, "leaf.pem", out.certificate);
      const root = await writeTemp(ca.dir, "root.pem", ca.rootPem);
      const chain = await writeTemp(ca.dir, "chain.pem", out.chain.join(""));
      const v = await openssl(["verify", "-x509_strict", "-CAfile", root, "-untrusted", chain, leaf]);
      expect(v.stderr).toBe("");
      expect(v.stdout.trim()).toBe(`${leaf}: OK`);

      // The file backend's directory (and its development passphrase) never came into being.
      const data = await readdir(join(ca.dir, "data"));
      expect(data).not.toContain("keys");
    } finally {
      await ca.close();
    }
  });

  it("mayfly init creates the CA keys in the token, once", async () => {
    const dir = join(hsm.dir, "cli");
    const cfg = join(hsm.dir, "cli.yaml");
    const pin = join(hsm.dir, "cli-pin");
    await writeFile(pin, cliToken.pin, { mode: 0o600 });
    await writeFile(cfg, config(cliToken, pin));
    const env = { MAYFLY_DATA_DIR: dir, SOFTHSM2_CONF: process.env.SOFTHSM2_CONF! };
    const first = await mayfly(["init", "--json", "-c", cfg], env);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(JSON.parse(first.stdout)).toMatchObject({ ok: true, created: true });
    const again = await mayfly(["init", "--json", "-c", cfg], env);
    expect(JSON.parse(again.stdout)).toMatchObject({ ok: true, created: false });
    const ks = await openOn(cliToken);
    try {
      expect(await ks.list()).toHaveLength(2);
    } finally {
      await ks.close();
    }
  });
});
