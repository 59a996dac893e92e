import {
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
} from "node:crypto";
import type { CaSigner, HashName, KeySpec } from "../../src/keys/keystore.js";

/**
 * A minimal CaSigner over a node:crypto KeyObject, for x509 tests and the encoder
 * benchmark. Sync sign wrapped in a promise: tests want determinism, not throughput
 * across the thread pool. `privateKey` is exposed because tests build WebCrypto
 * twins of the same key for @peculiar/x509.
 */
export interface MemorySigner extends CaSigner {
  readonly privateKey: KeyObject;
}

export function memorySigner(spec: KeySpec, label = "test"): MemorySigner {
  const { privateKey } =
    spec.kind === "ec"
      ? generateKeyPairSync("ec", { namedCurve: spec.curve })
      : generateKeyPairSync("rsa", { modulusLength: spec.bits });
  return memorySignerFromKey(privateKey, spec, label);
}

export function memorySignerFromKey(
  privateKey: KeyObject | Buffer,
  spec: KeySpec,
  label = "test",
): MemorySigner {
  const key: KeyObject = Buffer.isBuffer(privateKey)
    ? createPrivateKey({ key: privateKey, format: "der", type: "pkcs8" })
    : (privateKey as KeyObject);
  const publicKey = createPublicKey(key);
  return {
    label,
    spec,
    publicKey,
    privateKey: key,
    spki: publicKey.export({ type: "spki", format: "der" }),
    async sign(data: Uint8Array, hash: HashName): Promise<Buffer> {
      return spec.kind === "ec"
        ? sign(hash, data, { key, dsaEncoding: "der" })
        : sign(hash, data, { key, padding: constants.RSA_PKCS1_PADDING });
    },
  };
}
