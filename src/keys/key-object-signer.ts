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
   * EC keys sign on the event loop: a P-256 signature is ~20-40 µs of CPU, while a trip
   * through the libuv pool costs 95-160 µs of process CPU per signature (measured with
   * scripts/bench-hotpath.ts --sync-sign), and on a busy 2-core CA there is no idle core
   * for the pool to win back. RSA (milliseconds per signature) stays on the pool so it
   * never stalls the loop.
   */
  sign(data: Uint8Array, hash: HashName): Promise<Buffer> {
    assertHash(hash);
    if (this.spec.kind === "ec") {
      try {
        return Promise.resolve(sign(hash, data, { key: this.#privateKey, dsaEncoding: "der" }));
      } catch (err) {
        return Promise.reject(this.#failed(err));
      }
    }
    return new Promise((resolve, reject) => {
      sign(hash, data, { key: this.#privateKey, padding: constants.RSA_PKCS1_PADDING }, (err, sig) => {
        if (err) reject(this.#failed(err));
        else resolve(sig);
      });
    });
  }

  // The OpenSSL error text never carries key bytes, but keep it as a cause only.
  #failed(err: unknown): MayflyError {
    return new MayflyError("internal.error", `signing with key ${this.label} failed`, { cause: err });
  }

  toJSON(): Record<string, unknown> {
    return { label: this.label, spec: this.spec, spki: this.spki.toString("base64") };
  }

  [inspect.custom](): string {
    return `CaSigner { label: ${JSON.stringify(this.label)}, spec: ${JSON.stringify(this.spec)} }`;
  }
}
