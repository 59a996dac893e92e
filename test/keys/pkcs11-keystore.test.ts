import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { KeySpec } from "../../src/keys/keystore.js";
import { openKeyStore } from "../../src/keys/open.js";
import { Pkcs11KeyStore } from "../../src/keys/pkcs11-keystore.js";
import {
  acquireModule,
  ckr,
  ckrName,
  findTokenSlot,
  type Handle,
  P11,
  type Pkcs11Lib,
} from "../../src/keys/pkcs11-module.js";
import { expectCode, runKeyStoreConformance, verifies } from "./conformance.js";
import { SOFTHSM_MODULE, SoftHsm, type TestToken } from "./softhsm.js";

const P256: KeySpec = { kind: "ec", curve: "P-256" };
const RSA2048: KeySpec = { kind: "rsa", bits: 2048 };

// SoftHSM reads SOFTHSM2_CONF and scans its token directory at C_Initialize; the store
// finalises the module when its last store closes, so every token below is created
// while no store is open.
let hsm: SoftHsm;
beforeAll(async () => {
  hsm = await SoftHsm.create();
});
afterAll(async () => {
  await hsm.cleanup();
});

const openOn = (t: TestToken): Promise<Pkcs11KeyStore> =>
  Pkcs11KeyStore.open({ module: SOFTHSM_MODULE, tokenLabel: t.label, pin: t.pin });

const tokensByLabel = new Map<string, TestToken>();
runKeyStoreConformance(
  "pkcs11 (SoftHSM2)",
  async () => {
    const t = await hsm.initToken();
    tokensByLabel.set(t.label, t);
    return openOn(t);
  },
  {
    reopen: async (store) => {
      const t = tokensByLabel.get((store as Pkcs11KeyStore).tokenLabel)!;
      await store.close();
      return openOn(t);
    },
  },
);

/** A session of the test's own on the store's token, as another application in the process would have. */
async function withSession<T>(
  token: TestToken,
  fn: (lib: Pkcs11Lib, s: Handle) => T | Promise<T>,
): Promise<T> {
  const module = acquireModule(SOFTHSM_MODULE);
  const lib = module.lib;
  const s = lib.C_OpenSession(findTokenSlot(lib, token.label), P11.CKF_SERIAL_SESSION | P11.CKF_RW_SESSION);
  try {
    try {
      lib.C_Login(s, P11.CKU_USER, token.pin);
    } catch (e) {
      if (ckr(e) !== P11.CKR_USER_ALREADY_LOGGED_IN) throw e;
    }
    return await fn(lib, s);
  } finally {
    lib.C_CloseSession(s);
    module.release();
  }
}

function find(lib: Pkcs11Lib, s: Handle, label: string, cls: number): Handle {
  lib.C_FindObjectsInit(s, [
    { type: P11.CKA_CLASS, value: cls },
    { type: P11.CKA_LABEL, value: label },
  ]);
  const found = lib.C_FindObjects(s, 10);
  lib.C_FindObjectsFinal(s);
  expect(found).toHaveLength(1);
  return found[0]!;
}

/** The CKR_ name of a PKCS#11 call's failure, or "CKR_OK" if it succeeded. */
function ckrOf(fn: () => unknown): string {
  try {
    fn();
    return "CKR_OK";
  } catch (e) {
    return ckrName(e);
  }
}

function boolAttr(lib: Pkcs11Lib, s: Handle, h: Handle, type: number): boolean {
  const [a] = lib.C_GetAttributeValue(s, h, [{ type }]);
  return a!.value[0] === 1;
}

describe("pkcs11: private keys cannot leave the token", () => {
  let token: TestToken;
  let ks: Pkcs11KeyStore;
  beforeAll(async () => {
    token = await hsm.initToken();
    ks = await openOn(token);
    await ks.generate("ca-ec", P256);
    await ks.generate("ca-rsa", RSA2048);
  });
  afterAll(async () => {
    await ks.close();
  });

  it.each([
    ["ca-ec", [P11.CKA_VALUE]],
    ["ca-rsa", [P11.CKA_PRIVATE_EXPONENT, P11.CKA_PRIME_1, P11.CKA_PRIME_2, P11.CKA_COEFFICIENT]],
  ] as const)(
    "%s: the secret attributes are unreadable and the protection flags are set",
    async (label, secrets) => {
      await withSession(token, (lib, s) => {
        const priv = find(lib, s, label, P11.CKO_PRIVATE_KEY);
        for (const type of secrets) {
          expect(ckrOf(() => lib.C_GetAttributeValue(s, priv, [{ type }]))).toBe("CKR_ATTRIBUTE_SENSITIVE");
        }
        expect(boolAttr(lib, s, priv, P11.CKA_TOKEN)).toBe(true);
        expect(boolAttr(lib, s, priv, P11.CKA_PRIVATE)).toBe(true);
        expect(boolAttr(lib, s, priv, P11.CKA_SENSITIVE)).toBe(true);
        expect(boolAttr(lib, s, priv, P11.CKA_EXTRACTABLE)).toBe(false);
        expect(boolAttr(lib, s, priv, P11.CKA_ALWAYS_SENSITIVE)).toBe(true);
        expect(boolAttr(lib, s, priv, P11.CKA_NEVER_EXTRACTABLE)).toBe(true);
        expect(boolAttr(lib, s, priv, P11.CKA_SIGN)).toBe(true);
        expect(boolAttr(lib, s, priv, P11.CKA_DECRYPT)).toBe(false);
        expect(boolAttr(lib, s, priv, P11.CKA_UNWRAP)).toBe(false);
        expect(boolAttr(lib, s, priv, P11.CKA_DERIVE)).toBe(false);
        const [id] = lib.C_GetAttributeValue(s, priv, [{ type: P11.CKA_ID }]);
        expect(id!.value.toString()).toBe(label);
      });
    },
  );

  it("refuses C_WrapKey of a CA key, while the same wrap of an exportable key works", async () => {
    await withSession(token, (lib, s) => {
      const wrapping = lib.C_GenerateKey(s, { mechanism: P11.CKM_AES_KEY_GEN }, [
        { type: P11.CKA_CLASS, value: P11.CKO_SECRET_KEY },
        { type: P11.CKA_KEY_TYPE, value: P11.CKK_AES },
        { type: P11.CKA_TOKEN, value: false },
        { type: P11.CKA_VALUE_LEN, value: 32 },
        { type: P11.CKA_WRAP, value: true },
      ]);
      const wrap = (key: Handle) => () =>
        lib.C_WrapKey(s, { mechanism: P11.CKM_AES_KEY_WRAP_PAD }, wrapping, key, Buffer.alloc(8192));
      for (const label of ["ca-ec", "ca-rsa"]) {
        expect(ckrOf(wrap(find(lib, s, label, P11.CKO_PRIVATE_KEY)))).toBe("CKR_KEY_UNEXTRACTABLE");
      }
      // Control: an exportable session key pair wraps fine, so the refusal is the CA key's attributes.
      const control = lib.C_GenerateKeyPair(
        s,
        { mechanism: P11.CKM_EC_KEY_PAIR_GEN },
        [
          { type: P11.CKA_TOKEN, value: false },
          { type: P11.CKA_EC_PARAMS, value: Buffer.from("06082a8648ce3d030107", "hex") },
        ],
        [
          { type: P11.CKA_TOKEN, value: false },
          { type: P11.CKA_SENSITIVE, value: true },
          { type: P11.CKA_EXTRACTABLE, value: true },
          { type: P11.CKA_SIGN, value: true },
        ],
      );
      expect(ckrOf(wrap(control.privateKey))).toBe("CKR_OK");
    });
  });

  it("refuses to relax the flags or to copy the key with them relaxed", async () => {
    await withSession(token, (lib, s) => {
      const priv = find(lib, s, "ca-ec", P11.CKO_PRIVATE_KEY);
      for (const attr of [
        { type: P11.CKA_EXTRACTABLE, value: true },
        { type: P11.CKA_SENSITIVE, value: false },
      ]) {
        expect(ckrOf(() => lib.C_SetAttributeValue(s, priv, [attr]))).toBe("CKR_ATTRIBUTE_READ_ONLY");
        expect(ckrOf(() => lib.C_CopyObject(s, priv, [attr]))).toBe("CKR_ATTRIBUTE_READ_ONLY");
      }
      expect(boolAttr(lib, s, priv, P11.CKA_EXTRACTABLE)).toBe(false);
      expect(boolAttr(lib, s, priv, P11.CKA_SENSITIVE)).toBe(true);
    });
  });

  it("refuses to load a key that is, or once was, exportable (key.extractable)", async () => {
    await withSession(token, (lib, s) => {
      const make = (label: string, sensitive: boolean, extractable: boolean) =>
        lib.C_GenerateKeyPair(
          s,
          { mechanism: P11.CKM_EC_KEY_PAIR_GEN },
          [
            { type: P11.CKA_TOKEN, value: true },
            { type: P11.CKA_LABEL, value: label },
            { type: P11.CKA_VERIFY, value: true },
            { type: P11.CKA_EC_PARAMS, value: Buffer.from("06082a8648ce3d030107", "hex") },
          ],
          [
            { type: P11.CKA_TOKEN, value: true },
            { type: P11.CKA_PRIVATE, value: true },
            { type: P11.CKA_LABEL, value: label },
            { type: P11.CKA_SIGN, value: true },
            { type: P11.CKA_SENSITIVE, value: sensitive },
            { type: P11.CKA_EXTRACTABLE, value: extractable },
          ],
        );
      make("exportable", true, true);
      make("plain", false, false);
      const once = make("once-exportable", false, true);
      // Locked down afterwards: the flags look right now, but a copy may have been taken.
      lib.C_SetAttributeValue(s, once.privateKey, [
        { type: P11.CKA_SENSITIVE, value: true },
        { type: P11.CKA_EXTRACTABLE, value: false },
      ]);
    });
    for (const label of ["exportable", "plain", "once-exportable"]) {
      await expectCode(ks.load(label), "key.extractable");
    }
    expect(await ks.list()).toEqual(["ca-ec", "ca-rsa", "exportable", "once-exportable", "plain"]);
  });
});

describe("pkcs11: opening, PINs and integrity", () => {
  let token: TestToken;
  let other: TestToken;
  beforeAll(async () => {
    token = await hsm.initToken();
    other = await hsm.initToken();
  });

  it("answers key.token_login_failed for a wrong PIN, and config.invalid for a wrong token or module", async () => {
    await expectCode(
      Pkcs11KeyStore.open({ module: SOFTHSM_MODULE, tokenLabel: token.label, pin: "0000wrong" }),
      "key.token_login_failed",
    );
    const noToken = await expectCode(
      Pkcs11KeyStore.open({ module: SOFTHSM_MODULE, tokenLabel: "no-such-token", pin: token.pin }),
      "config.invalid",
    );
    expect(noToken.message).toContain(token.label); // names the tokens it did find
    await expectCode(
      Pkcs11KeyStore.open({ module: "/nonexistent/libpkcs11.so", tokenLabel: token.label, pin: token.pin }),
      "config.invalid",
    );
    await expectCode(
      Pkcs11KeyStore.open({ module: "/etc/hostname", tokenLabel: token.label, pin: token.pin }),
      "config.invalid",
    );
  });

  it("refuses a second store with another PIN while the token is logged in", async () => {
    const a = await openOn(token);
    try {
      await expectCode(
        Pkcs11KeyStore.open({ module: SOFTHSM_MODULE, tokenLabel: token.label, pin: `${token.pin}x` }),
        "key.token_login_failed",
      );
      const b = await openOn(token); // the right PIN shares the login
      await b.close();
      expect(await a.list()).toEqual([]);
    } finally {
      await a.close();
    }
  });

  it("opens through openKeyStore with the PIN from the environment", async () => {
    const ks = await openKeyStore(
      { kind: "pkcs11", module: SOFTHSM_MODULE, tokenLabel: other.label, pin: { env: "TOKEN_PIN" } },
      { env: { TOKEN_PIN: other.pin } },
    );
    try {
      expect(ks.kind).toBe("pkcs11");
      const s = await ks.generate("root", P256);
      const data = Buffer.from("tbs");
      expect(verifies(s, data, await s.sign(data, "sha256"), "sha256")).toBe(true);
    } finally {
      await ks.close();
    }
    await expectCode(
      openKeyStore(
        { kind: "pkcs11", module: SOFTHSM_MODULE, tokenLabel: other.label, pin: { env: "TOKEN_PIN" } },
        { env: {} },
      ),
      "config.secret_unavailable",
    );
  });

  it("refuses a key whose public key object belongs to another key (key.decrypt_failed)", async () => {
    let ks = await openOn(token);
    try {
      await ks.generate("a", P256);
      await ks.generate("b", P256);
      await withSession(token, (lib, s) => {
        lib.C_DestroyObject(s, find(lib, s, "a", P11.CKO_PUBLIC_KEY));
        lib.C_SetAttributeValue(s, find(lib, s, "b", P11.CKO_PUBLIC_KEY), [
          { type: P11.CKA_LABEL, value: "a" },
        ]);
      });
      await ks.close();
      ks = await openOn(token); // a fresh store: nothing cached
      const err = await expectCode(ks.load("a"), "key.decrypt_failed");
      expect(err.message).toContain("does not match");
      await expectCode(ks.load("b"), "key.decrypt_failed"); // its public key object is gone
    } finally {
      await ks.close();
    }
  });

  it("signs concurrently from many callers, every signature valid", async () => {
    const ks = await Pkcs11KeyStore.open({
      module: SOFTHSM_MODULE,
      tokenLabel: other.label,
      pin: other.pin,
      maxSessions: 3,
    });
    try {
      const ec = await ks.load("root");
      const rsa = await ks.generate("rsa", RSA2048);
      const jobs = Array.from({ length: 120 }, (_, i) => {
        const signer = i % 4 === 0 ? rsa : ec;
        const data = Buffer.from(`message ${i}`);
        const hash = i % 2 === 0 ? "sha256" : "sha384";
        return signer.sign(data, hash).then((sig) => verifies(signer, data, sig, hash));
      });
      expect(await Promise.all(jobs)).toEqual(jobs.map(() => true));
    } finally {
      await ks.close();
    }
  });

  it("a signer fails closed once the last store on its token has closed", async () => {
    const ks = await openOn(other);
    const signer = await ks.load("root");
    await ks.close();
    await expectCode(signer.sign(Buffer.from("x"), "sha256"), "internal.error");
    await expectCode(async () => ks.load("root"), "internal.error");
  });
});
