import { MayflyError } from "../errors/index.js";
import { FileKeyStore } from "./file-keystore.js";
import type { KeyStore } from "./keystore.js";
import { describeSecretRef, readSecret, type SecretRef } from "./passphrase.js";
import { Pkcs11KeyStore } from "./pkcs11-keystore.js";

export type FileKeyStoreConfig = { kind: "file"; dir: string; passphrase: SecretRef };
/** A PKCS#11 token (an HSM, or SoftHSM2): the library, the token label and the user PIN. */
export type Pkcs11KeyStoreConfig = { kind: "pkcs11"; module: string; tokenLabel: string; pin: SecretRef };
export type KeyStoreConfig = FileKeyStoreConfig | Pkcs11KeyStoreConfig;

export type OpenKeyStoreOptions = {
  env?: NodeJS.ProcessEnv;
  /** Receives operator warnings (e.g. a world-readable passphrase file); never secret values. */
  onWarning?: (message: string) => void;
};

/**
 * The KeyStoreConfig for the config file's `keys` section (kind pkcs11 requires its
 * `pkcs11` block, which the schema enforces). `filePassphrase` is called only for the
 * file kind, so a token-backed CA never creates a development passphrase file.
 */
export async function keyStoreConfigFor(
  keys: {
    kind: KeyStoreConfig["kind"];
    pkcs11: { module: string; tokenLabel: string; pin: SecretRef } | null;
  },
  keysDir: string,
  filePassphrase: () => Promise<SecretRef>,
): Promise<KeyStoreConfig> {
  if (keys.kind === "pkcs11") {
    if (!keys.pkcs11) {
      throw new MayflyError("config.invalid", 'keys.kind "pkcs11" needs keys.pkcs11', {
        field: "keys.pkcs11",
      });
    }
    const { module, tokenLabel, pin } = keys.pkcs11;
    return { kind: "pkcs11", module, tokenLabel, pin };
  }
  return { kind: "file", dir: keysDir, passphrase: await filePassphrase() };
}

/** The one place that turns key store configuration into a KeyStore; callers never name a backend class. */
export async function openKeyStore(cfg: KeyStoreConfig, opts: OpenKeyStoreOptions = {}): Promise<KeyStore> {
  switch (cfg.kind) {
    case "file": {
      const secret = await readSecret(cfg.passphrase, opts.env ?? process.env);
      for (const w of secret.warnings) opts.onWarning?.(w);
      return FileKeyStore.open({
        dir: cfg.dir,
        passphrase: secret.value,
        passphraseSource: describeSecretRef(cfg.passphrase),
      });
    }
    case "pkcs11": {
      const pin = await readSecret(cfg.pin, opts.env ?? process.env);
      for (const w of pin.warnings) opts.onWarning?.(w);
      return Pkcs11KeyStore.open({
        module: cfg.module,
        tokenLabel: cfg.tokenLabel,
        pin: pin.value,
        pinSource: describeSecretRef(cfg.pin),
      });
    }
    default:
      throw new MayflyError(
        "config.invalid",
        `unknown key store kind ${JSON.stringify((cfg as { kind: unknown }).kind)}`,
        {
          field: "kind",
        },
      );
  }
}
