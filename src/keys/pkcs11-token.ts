import { createHash, timingSafeEqual } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import { acquireModule, findTokenSlot, type Handle, type Pkcs11Lib, tokenFailed } from "./pkcs11-module.js";
import { SessionPool } from "./pkcs11-sessions.js";

export type TokenOptions = {
  module: string;
  tokenLabel: string;
  pin: string;
  pinSource: string;
  maxSessions: number;
};

/**
 * One logged-in token in this process. PKCS#11 keeps the login per application and
 * token, not per session, so every key store on the same token shares one connection:
 * the last one to close logs out, closes the sessions and releases the module.
 */
export interface TokenConnection {
  /** Module path and token label; the same for every connection to that token. */
  readonly key: string;
  readonly tokenLabel: string;
  readonly lib: Pkcs11Lib;
  readonly pool: SessionPool;
  /** Generations in progress per label, shared by every store on the token in this process. */
  readonly labelLocks: Map<string, Promise<unknown>>;
  /** True once the last store using it has closed. */
  readonly closed: boolean;
}

type Conn = TokenConnection & { refs: number; pinHash: Buffer; closed: boolean; release: () => void };

const tokens = new Map<string, Conn>();

const pinHash = (pin: string): Buffer => createHash("sha256").update(pin, "utf8").digest();

/** The open connection to the token `key` names, if a store still holds one. */
export function liveToken(key: string): TokenConnection | undefined {
  return tokens.get(key);
}

export type TokenLease = { conn: TokenConnection; release(): Promise<void> };

export function connectToken(opts: TokenOptions): TokenLease {
  const module = acquireModule(opts.module);
  const key = `${module.path}\u0000${opts.tokenLabel}`;
  let conn = tokens.get(key);
  if (conn) {
    module.release(); // the connection holds its own reference
    // The token is already logged in for the whole process; a second store must still
    // know the PIN, or a wrong PIN would ride on the first store's login.
    if (!timingSafeEqual(conn.pinHash, pinHash(opts.pin))) {
      throw new MayflyError(
        "key.token_login_failed",
        `the PIN from ${opts.pinSource} differs from the one token ${JSON.stringify(opts.tokenLabel)} is logged in with`,
      );
    }
  } else {
    let slot: Handle;
    let pool: SessionPool;
    try {
      slot = findTokenSlot(module.lib, opts.tokenLabel);
      pool = new SessionPool(module.lib, slot, opts.pin, opts.pinSource, opts.maxSessions);
      pool.start();
    } catch (e) {
      module.release();
      throw tokenFailed("opening the token", e);
    }
    conn = {
      key,
      tokenLabel: opts.tokenLabel,
      lib: module.lib,
      pool,
      labelLocks: new Map(),
      refs: 0,
      pinHash: pinHash(opts.pin),
      closed: false,
      release: () => module.release(),
    };
    tokens.set(key, conn);
  }
  conn.refs++;
  const c = conn;
  let released = false;
  return {
    conn: c,
    async release() {
      if (released) return;
      released = true;
      if (--c.refs > 0) return;
      c.closed = true;
      if (tokens.get(c.key) === c) tokens.delete(c.key);
      try {
        await c.pool.close(true);
      } finally {
        c.release();
      }
    },
  };
}
