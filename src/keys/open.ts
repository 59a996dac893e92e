import { MayflyError } from "../errors/index.js";
import { FileKeyStore } from "./file-keystore.js";
import type { KeyStore } from "./keystore.js";
import { describeSecretRef, readSecret, type SecretRef } from "./passphrase.js";

export type FileKeyStoreConfig = { kind: "file"; dir: string; passphrase: SecretRef };
/** Provisional shape for issue 9 (SoftHSM2 / HSM tokens); not accepted yet. */
export type Pkcs11KeyStoreConfig = { kind: "pkcs11"; module: string; tokenLabel: string; pin: SecretRef };
export type KeyStoreConfig = FileKeyStoreConfig | Pkcs11KeyStoreConfig;

export type OpenKeyStoreOptions = {
  env?: NodeJS.ProcessEnv;
  /** Receives operator warnings (e.g. a world-readable passphrase file); never secret values. */
  onWarning?: (message: string) => void;
};

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
    case "pkcs11":
      throw new MayflyError("config.invalid", 'key store kind "pkcs11" is not yet supported', {
        field: "kind",
      });
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
