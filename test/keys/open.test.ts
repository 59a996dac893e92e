import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type KeyStoreConfig, openKeyStore } from "../../src/keys/open.js";
import { expectCode } from "./conformance.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "mayfly-open-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("openKeyStore", () => {
  it("opens a file store with a passphrase from the environment", async () => {
    const env = { MAYFLY_KEY_PASSPHRASE: "a long enough passphrase" };
    const cfg: KeyStoreConfig = {
      kind: "file",
      dir: join(dir, "env"),
      passphrase: { env: "MAYFLY_KEY_PASSPHRASE" },
    };
    const ks = await openKeyStore(cfg, { env });
    expect(ks.kind).toBe("file");
    const s = await ks.generate("root", { kind: "ec", curve: "P-256" });
    await ks.close();
    expect((await (await openKeyStore(cfg, { env })).load("root")).spki.equals(s.spki)).toBe(true);
  });

  it("passes on warnings about the passphrase file", async () => {
    const file = join(dir, "pass");
    await writeFile(file, "a long enough passphrase\n", { mode: 0o644 });
    const warnings: string[] = [];
    await openKeyStore(
      { kind: "file", dir: join(dir, "file"), passphrase: { file } },
      { onWarning: (w) => warnings.push(w) },
    );
    expect(warnings.join()).toContain("world-readable");
  });

  it("refuses a weak passphrase, naming where it came from", async () => {
    const cfg: KeyStoreConfig = { kind: "file", dir: join(dir, "weak"), passphrase: { env: "P" } };
    const err = await expectCode(openKeyStore(cfg, { env: { P: "short" } }), "key.passphrase_weak");
    expect(err.message).toContain("environment variable P");
  });

  it("refuses unknown kinds", async () => {
    await expectCode(openKeyStore({ kind: "vault" } as unknown as KeyStoreConfig), "config.invalid");
  });
});
