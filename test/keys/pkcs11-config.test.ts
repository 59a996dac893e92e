import { describe, expect, it } from "vitest";
import { parseConfigText } from "../../src/config/index.js";
import { keyStoreConfigFor } from "../../src/keys/open.js";

describe("keys configuration for kind pkcs11", () => {
  it("accepts a token with a PIN reference and maps it to the key store config", async () => {
    const r = parseConfigText(`
keys:
  kind: pkcs11
  pkcs11:
    module: /usr/lib/softhsm/libsofthsm2.so
    tokenLabel: mayfly
    pin: { env: MAYFLY_TOKEN_PIN }
`);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    let asked = false;
    const cfg = await keyStoreConfigFor(r.config.keys, "/unused", async () => {
      asked = true;
      return { env: "X" };
    });
    expect(cfg).toEqual({
      kind: "pkcs11",
      module: "/usr/lib/softhsm/libsofthsm2.so",
      tokenLabel: "mayfly",
      pin: { env: "MAYFLY_TOKEN_PIN" },
    });
    expect(asked).toBe(false); // no development passphrase file for a token-backed CA
  });

  it("keeps the file kind the default", async () => {
    const r = parseConfigText("");
    expect(r.ok && r.config.keys).toEqual({ kind: "file", dir: null, passphrase: null, pkcs11: null });
    if (!r.ok) return;
    expect(await keyStoreConfigFor(r.config.keys, "/k", async () => ({ file: "/p" }))).toEqual({
      kind: "file",
      dir: "/k",
      passphrase: { file: "/p" },
    });
  });

  it.each([
    ["kind pkcs11 without its block", "keys: { kind: pkcs11 }", "keys.pkcs11"],
    [
      "an inline PIN",
      "keys: { kind: pkcs11, pkcs11: { module: m.so, tokenLabel: t, pin: '1234' } }",
      "keys.pkcs11.pin",
    ],
    [
      "a token label over 32 bytes",
      `keys: { kind: pkcs11, pkcs11: { module: m.so, tokenLabel: ${"x".repeat(33)}, pin: { env: P } } }`,
      "keys.pkcs11.tokenLabel",
    ],
    [
      "an unknown key",
      "keys: { kind: pkcs11, pkcs11: { module: m.so, tokenLabel: t, pin: { env: P }, slot: 0 } }",
      "keys.pkcs11",
    ],
    ["an unknown kind", "keys: { kind: vault }", "keys.kind"],
  ])("reports %s at its path", (_name, text, path) => {
    const r = parseConfigText(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.issues.map((i) => i.path)).toContain(path);
  });
});
