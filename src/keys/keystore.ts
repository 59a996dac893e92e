import type { KeyObject } from "node:crypto";

export type KeySpec = { kind: "ec"; curve: "P-256" | "P-384" } | { kind: "rsa"; bits: 2048 | 3072 | 4096 };
export type HashName = "sha256" | "sha384";

/**
 * A handle on a CA private key. Callers never see the private key itself, so the
 * same code works for file keys and for keys inside a PKCS#11 token.
 */
export interface CaSigner {
  /** The KeyStore label; stable, used to refer to the key from the store. */
  readonly label: string;
  readonly spec: KeySpec;
  readonly publicKey: KeyObject;
  /** SubjectPublicKeyInfo DER. */
  readonly spki: Buffer;
  /**
   * Signs `data` with hash `hash`. ECDSA signatures are returned DER-encoded
   * (Ecdsa-Sig-Value, as X.509 carries them); RSA as PKCS#1 v1.5.
   */
  sign(data: Uint8Array, hash: HashName): Promise<Buffer>;
}

/**
 * Where CA keys live. Labels are opaque; slot bookkeeping (current, next) lives in
 * the store, so rotation only ever adds labels here.
 */
export interface KeyStore {
  readonly kind: string; // "file" | "pkcs11"
  /** Creates a key under a new label; key.exists if the label is taken. */
  generate(label: string, spec: KeySpec): Promise<CaSigner>;
  /** key.not_found if absent, key.decrypt_failed if it cannot be opened. */
  load(label: string): Promise<CaSigner>;
  has(label: string): Promise<boolean>;
  list(): Promise<string[]>;
  close(): Promise<void>;
}
