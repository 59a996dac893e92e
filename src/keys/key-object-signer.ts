import { constants, createPublicKey, type KeyObject, sign } from "node:crypto";
import { inspect } from "node:util";
import { MayflyError } from "../errors/index.js";
import type { CaSigner, HashName, KeySpec } from "./keystore.js";
import { assertHash, specOf } from "./spec.js";

/**
 * A CaSigner over an in-memory node:crypto private KeyObject (the file backend).
 * The private key sits in a #private field: it is not a property, so it is invisible
 * to JSON.stringify, util.inspect, Object.keys and spread, and only `sign` reaches it.
 */
export class KeyObjectSigner implements CaSigner {
  readonly label: string;
  readonly spec: KeySpec;
  readonly publicKey: KeyObject;
  readonly spki: Buffer;
  readonly #privateKey: KeyObject;

  constructor(label: string, privateKey: KeyObject) {
    if (privateKey.type !== "private") throw new MayflyError("internal.error", "signer needs a private key");
    this.label = label;
    this.spec = Object.freeze(specOf(privateKey));
    this.#privateKey = privateKey;
    this.publicKey = createPublicKey(privateKey);
    this.spki = this.publicKey.export({ type: "spki", format: "der" });
    Object.freeze(this);
  }

  /**
   * Async (libuv thread pool) rather than sync: on this class of machine P-256 signs
   * ~40k/s sync but ~65k/s across the pool, and P-384/RSA never block the event loop.
   */
  sign(data: Uint8Array, hash: HashName): Promise<Buffer> {
    assertHash(hash);
    const key =
      this.spec.kind === "ec"
        ? { key: this.#privateKey, dsaEncoding: "der" as const }
        : { key: this.#privateKey, padding: constants.RSA_PKCS1_PADDING };
    return new Promise((resolve, reject) => {
      sign(hash, data, key, (err, sig) => {
        // The OpenSSL error text never carries key bytes, but keep it as a cause only.
        if (err)
          reject(new MayflyError("internal.error", `signing with key ${this.label} failed`, { cause: err }));
        else resolve(sig);
      });
    });
  }

  toJSON(): Record<string, unknown> {
    return { label: this.label, spec: this.spec, spki: this.spki.toString("base64") };
  }

  [inspect.custom](): string {
    return `CaSigner { label: ${JSON.stringify(this.label)}, spec: ${JSON.stringify(this.spec)} }`;
  }
}
