import { constants, createHash, type KeyObject, verify } from "node:crypto";
import { inspect } from "node:util";
import { MayflyError } from "../errors/index.js";
import type { CaSigner, HashName, KeySpec } from "./keystore.js";
import { COORD_BYTES, digestInfo, ecdsaRawToDer } from "./pkcs11-encoding.js";
import { ckr, type Handle, P11, tokenFailed } from "./pkcs11-module.js";
import { findKeys } from "./pkcs11-objects.js";
import { liveToken, type TokenConnection } from "./pkcs11-token.js";
import { assertHash } from "./spec.js";

/** Where a signer's private key is: a token connection and an object handle, both replaceable. */
type KeyRef = { label: string; conn: TokenConnection; handle: Handle | null };

/**
 * A CaSigner whose private key stays in the token; it holds only an object handle.
 * Like a file signer it outlives the store that made it, while any store on the same
 * token is open in the process: the key is then found again by label. That cannot
 * swap keys unnoticed, because every signature is verified against this signer's
 * public key before it is returned (which also stops a faulty RSA-CRT signature,
 * one that would leak the key, from ever leaving).
 */
export class Pkcs11Signer implements CaSigner {
  readonly label: string;
  readonly spec: KeySpec;
  readonly publicKey: KeyObject;
  readonly spki: Buffer;
  readonly #ref: KeyRef;

  constructor(label: string, spec: KeySpec, publicKey: KeyObject, conn: TokenConnection, handle: Handle) {
    this.label = label;
    this.spec = Object.freeze(spec);
    this.publicKey = publicKey;
    this.spki = publicKey.export({ type: "spki", format: "der" });
    this.#ref = { label, conn, handle };
    Object.freeze(this);
  }

  async sign(data: Uint8Array, hash: HashName): Promise<Buffer> {
    assertHash(hash);
    // Hash in software and send the token only the digest: no large transfers, one path for both key types.
    const digest = createHash(hash).update(data).digest();
    let sig: Buffer;
    if (this.spec.kind === "ec") {
      const n = COORD_BYTES[this.spec.curve];
      sig = ecdsaRawToDer(await tokenSign(this.#ref, P11.CKM_ECDSA, digest, 2 * n), n);
    } else {
      sig = await tokenSign(this.#ref, P11.CKM_RSA_PKCS, digestInfo(hash, digest), this.spec.bits / 8);
    }
    const ok =
      this.spec.kind === "ec"
        ? verify(hash, data, { key: this.publicKey, dsaEncoding: "der" }, sig)
        : verify(hash, data, { key: this.publicKey, padding: constants.RSA_PKCS1_PADDING }, sig);
    if (!ok) {
      throw new MayflyError(
        "key.token_failed",
        `the token's signature with key ${this.label} does not verify`,
        {
          extra: { mismatch: true },
        },
      );
    }
    return sig;
  }

  toJSON(): Record<string, unknown> {
    return { label: this.label, spec: this.spec, spki: this.spki.toString("base64") };
  }

  [inspect.custom](): string {
    return `CaSigner { label: ${JSON.stringify(this.label)}, spec: ${JSON.stringify(this.spec)}, token: true }`;
  }
}

const STALE_HANDLE = new Set<number>([P11.CKR_KEY_HANDLE_INVALID, P11.CKR_OBJECT_HANDLE_INVALID]);

async function tokenSign(ref: KeyRef, mechanism: number, input: Buffer, outLen: number): Promise<Buffer> {
  if (ref.conn.closed) {
    const live = liveToken(ref.conn.key);
    if (!live) throw new MayflyError("internal.error", "key store is closed");
    ref.conn = live;
    ref.handle = null;
  }
  const attempt = async (): Promise<Buffer> => {
    if (ref.handle === null) ref.handle = await refind(ref);
    const { conn, handle } = ref as { conn: TokenConnection; handle: Handle };
    return conn.pool.run(async (s) => {
      conn.lib.C_SignInit(s, { mechanism }, handle);
      return conn.lib.C_SignAsync(s, input, Buffer.alloc(outLen));
    });
  };
  try {
    return await attempt();
  } catch (e) {
    // Handles go stale across a token reset or an HSM fail-over: find the key once more.
    const code = ckr(e);
    if (code === undefined || !STALE_HANDLE.has(code)) throw tokenFailed(`signing with key ${ref.label}`, e);
    ref.handle = null;
    try {
      return await attempt();
    } catch (e2) {
      throw tokenFailed(`signing with key ${ref.label}`, e2);
    }
  }
}

async function refind(ref: KeyRef): Promise<Handle> {
  const found = await findKeys(ref.conn, ref.label, P11.CKO_PRIVATE_KEY);
  if (found.length !== 1) {
    throw new MayflyError(
      "key.not_found",
      `key ${ref.label}: ${found.length} private keys with that label in token ${JSON.stringify(ref.conn.tokenLabel)}`,
    );
  }
  return found[0]!;
}
