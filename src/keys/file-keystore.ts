import { createPrivateKey, createPublicKey, type KeyObject } from "node:crypto";
import { access, mkdir, readdir, stat } from "node:fs/promises";
import { join, resolve } from "node:path";
import { MayflyError } from "../errors/index.js";
import { type Random, systemRandom } from "../runtime/clock.js";
import { publishNew, publishReplace, readSmallFile } from "./atomic-file.js";
import { KeyObjectSigner } from "./key-object-signer.js";
import type { CaSigner, KeySpec, KeyStore } from "./keystore.js";
import { assertLabel } from "./label.js";
import { assertPassphraseStrength } from "./passphrase.js";
import { decryptPkcs8, encryptPkcs8 } from "./pbes2.js";
import { assertSpec, generatePrivateKey } from "./spec.js";

export type FileKeyStoreOptions = {
  dir: string;
  /** Already resolved (see resolveSecret); checked against MIN_PASSPHRASE_LENGTH. */
  passphrase: string;
  /** Where the passphrase came from, for error messages. */
  passphraseSource?: string;
  random?: Random;
};

const KEY_SUFFIX = ".key.pem";
const PUB_SUFFIX = ".pub.pem";
const MAX_PEM_BYTES = 16 * 1024;

function errno(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException | null)?.code;
}

function ioError(what: string, e: unknown): MayflyError {
  return new MayflyError("internal.error", `key store: cannot ${what} (${errno(e) ?? "error"})`, {
    cause: e,
  });
}

/**
 * CA keys as passphrase-encrypted PKCS#8 files, `<dir>/<label>.key.pem` (0600), with
 * `<label>.pub.pem` beside it for operators. Loaded signers are cached for the life of
 * the store, so signing never touches the disk.
 */
export class FileKeyStore implements KeyStore {
  readonly kind = "file";
  readonly dir: string;
  readonly #passphrase: string;
  readonly #random: Random;
  readonly #cache = new Map<string, Promise<CaSigner>>();
  #closed = false;

  private constructor(dir: string, passphrase: string, random: Random) {
    this.dir = dir;
    this.#passphrase = passphrase;
    this.#random = random;
  }

  /** Creates the directory 0700 if needed; refuses one that others can write to (they could swap keys). */
  static async open(opts: FileKeyStoreOptions): Promise<FileKeyStore> {
    assertPassphraseStrength(opts.passphrase, opts.passphraseSource ?? "the configuration");
    const dir = resolve(opts.dir);
    try {
      await mkdir(dir, { recursive: true, mode: 0o700 });
    } catch (e) {
      throw ioError(`create ${dir}`, e);
    }
    const st = await stat(dir);
    if (!st.isDirectory()) throw new MayflyError("config.invalid", `key directory ${dir} is not a directory`);
    if ((st.mode & 0o022) !== 0) {
      throw new MayflyError(
        "config.invalid",
        `key directory ${dir} is writable by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 700 it`,
      );
    }
    return new FileKeyStore(dir, opts.passphrase, opts.random ?? systemRandom);
  }

  async generate(label: string, spec: KeySpec): Promise<CaSigner> {
    this.#assertOpen();
    assertLabel(label);
    assertSpec(spec);
    // Fail before the (slow, for RSA-4096) key generation; publishNew is the real guard.
    if (await this.has(label)) throw exists(label);
    const privateKey = await generatePrivateKey(spec);
    const signer = new KeyObjectSigner(label, privateKey);
    const pkcs8 = privateKey.export({ type: "pkcs8", format: "der" });
    let pem: string;
    try {
      pem = await encryptPkcs8(pkcs8, this.#passphrase, this.#random);
    } finally {
      pkcs8.fill(0);
    }
    let created: boolean;
    try {
      created = await publishNew(this.dir, label + KEY_SUFFIX, pem, this.#random);
      // The private key file is the commit point; the public file follows and may be rewritten.
      if (created) {
        const pub = signer.publicKey.export({ type: "spki", format: "pem" });
        await publishReplace(this.dir, label + PUB_SUFFIX, pub as string, this.#random);
      }
    } catch (e) {
      throw ioError(`write key ${label}`, e);
    }
    if (!created) throw exists(label);
    this.#cache.set(label, Promise.resolve(signer));
    return signer;
  }

  load(label: string): Promise<CaSigner> {
    this.#assertOpen();
    assertLabel(label);
    const cached = this.#cache.get(label);
    if (cached) return cached;
    // The promise is cached, so concurrent first loads decrypt once; failures are not cached.
    const p = this.#read(label);
    this.#cache.set(label, p);
    p.catch(() => {
      if (this.#cache.get(label) === p) this.#cache.delete(label);
    });
    return p;
  }

  async has(label: string): Promise<boolean> {
    this.#assertOpen();
    assertLabel(label);
    try {
      await access(join(this.dir, label + KEY_SUFFIX));
      return true;
    } catch (e) {
      if (errno(e) === "ENOENT") return false;
      throw ioError(`check key ${label}`, e);
    }
  }

  async list(): Promise<string[]> {
    this.#assertOpen();
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (e) {
      throw ioError(`list ${this.dir}`, e);
    }
    return names
      .filter((n) => n.endsWith(KEY_SUFFIX))
      .map((n) => n.slice(0, -KEY_SUFFIX.length))
      .filter((l) => {
        try {
          assertLabel(l);
          return true;
        } catch {
          return false;
        }
      })
      .sort();
  }

  /** Drops cached signers. KeyObjects that callers still hold stay usable: node cannot wipe them. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#cache.clear();
  }

  async #read(label: string): Promise<CaSigner> {
    const path = join(this.dir, label + KEY_SUFFIX);
    let pem: string;
    try {
      pem = await readSmallFile(path, MAX_PEM_BYTES);
    } catch (e) {
      if (errno(e) === "ENOENT") throw new MayflyError("key.not_found", `no key ${label} in ${this.dir}`);
      throw new MayflyError(
        "key.decrypt_failed",
        `key ${label}: cannot read ${path} (${errno(e) ?? "error"})`,
      );
    }
    const der = await decryptPkcs8(pem, this.#passphrase, label);
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
    } catch {
      throw new MayflyError("key.decrypt_failed", `key ${label}: decrypted data is not a private key`);
    } finally {
      der.fill(0);
    }
    const signer = new KeyObjectSigner(label, privateKey);
    await this.#checkPublicFile(label, signer.spki);
    return signer;
  }

  /** A pub file that disagrees with the key means tampering or a botched restore: refuse. */
  async #checkPublicFile(label: string, spki: Buffer): Promise<void> {
    let pub: string;
    try {
      pub = await readSmallFile(join(this.dir, label + PUB_SUFFIX), MAX_PEM_BYTES);
    } catch (e) {
      if (errno(e) === "ENOENT") return; // a crash between the two writes; the key file is authoritative
      throw new MayflyError(
        "key.decrypt_failed",
        `key ${label}: cannot read its public key file (${errno(e)})`,
      );
    }
    let matches = false;
    try {
      matches = createPublicKey(pub).export({ type: "spki", format: "der" }).equals(spki);
    } catch {
      // unparseable counts as a mismatch
    }
    if (!matches) {
      throw new MayflyError(
        "key.decrypt_failed",
        `key ${label}: ${label}${PUB_SUFFIX} does not match the private key`,
      );
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw new MayflyError("internal.error", "key store is closed");
  }
}

function exists(label: string): MayflyError {
  return new MayflyError("key.exists", `a key labelled ${label} already exists`);
}
