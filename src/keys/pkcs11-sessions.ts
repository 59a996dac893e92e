import { MayflyError } from "../errors/index.js";
import { ckr, type Handle, P11, type Pkcs11Lib, tokenFailed } from "./pkcs11-module.js";

// CK_STATE values (PKCS#11 v2.40 §5.7); pkcs11js does not export them.
const CKS_RW_PUBLIC_SESSION = 2;
const CKS_RW_USER_FUNCTIONS = 3;

const LOGIN_REFUSED = new Set<number>([
  P11.CKR_PIN_INCORRECT,
  P11.CKR_PIN_LOCKED,
  P11.CKR_PIN_EXPIRED,
  P11.CKR_PIN_LEN_RANGE,
  P11.CKR_PIN_INVALID,
  P11.CKR_USER_PIN_NOT_INITIALIZED,
]);

/**
 * A small pool of logged-in sessions on one token. A PKCS#11 session runs one
 * operation at a time (C_SignInit then C_Sign share its state), while the async
 * pkcs11js calls run on libuv threads; so each operation borrows a session of its own.
 * A session that saw a PKCS#11 error is closed rather than reused, since it may still
 * hold a half-finished operation; the pool opens a fresh one (logging in again if the
 * token forgot the login) the next time it needs one.
 */
export class SessionPool {
  readonly #lib: Pkcs11Lib;
  readonly #slot: Handle;
  readonly #pin: string;
  readonly #pinSource: string;
  readonly #max: number;
  readonly #idle: Handle[] = [];
  readonly #waiters: { resolve: (s: Handle) => void; reject: (e: unknown) => void }[] = [];
  #open = 0;
  #busy = 0;
  #closed = false;
  #drained: (() => void) | null = null;
  /** After a refused PIN the pool never tries again: repeated wrong PINs lock real tokens. */
  #refused: MayflyError | null = null;

  constructor(lib: Pkcs11Lib, slot: Handle, pin: string, pinSource: string, max: number) {
    this.#lib = lib;
    this.#slot = slot;
    this.#pin = pin;
    this.#pinSource = pinSource;
    this.#max = max;
  }

  /** Opens and logs in the first session, so that a wrong PIN fails at start-up. */
  start(): void {
    this.#idle.push(this.#openSession());
  }

  async run<T>(fn: (session: Handle) => T | Promise<T>): Promise<T> {
    const s = await this.#acquire();
    let result: T;
    try {
      result = await fn(s);
    } catch (e) {
      if (ckr(e) !== undefined) this.#discard(s);
      else this.#release(s);
      throw e;
    }
    this.#release(s);
    return result;
  }

  /** Waits for running operations, then logs out (if `logout`) and closes every session. */
  async close(logout: boolean): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closed = new MayflyError("internal.error", "key store is closed");
    for (const w of this.#waiters.splice(0)) w.reject(closed);
    if (this.#busy > 0) await new Promise<void>((resolve) => (this.#drained = resolve));
    const sessions = this.#idle.splice(0);
    if (logout && sessions.length > 0) {
      try {
        this.#lib.C_Logout(sessions[0]!);
      } catch {
        // not logged in any more; closing the last session logs out anyway
      }
    }
    for (const s of sessions) this.#closeSession(s);
  }

  #acquire(): Promise<Handle> {
    if (this.#closed) return Promise.reject(new MayflyError("internal.error", "key store is closed"));
    if (this.#refused) return Promise.reject(this.#refused);
    const idle = this.#idle.pop();
    if (idle) {
      this.#busy++;
      return Promise.resolve(idle);
    }
    if (this.#open < this.#max) {
      try {
        const s = this.#openSession();
        this.#busy++;
        return Promise.resolve(s);
      } catch (e) {
        return Promise.reject(e);
      }
    }
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }));
  }

  #release(s: Handle): void {
    const w = this.#waiters.shift();
    if (w) {
      w.resolve(s); // stays busy, handed over
      return;
    }
    this.#busy--;
    this.#idle.push(s);
    if (this.#busy === 0) this.#drained?.();
  }

  #discard(s: Handle): void {
    this.#closeSession(s);
    const w = this.#waiters.shift();
    if (w) {
      try {
        w.resolve(this.#openSession());
        return;
      } catch (e) {
        w.reject(e);
      }
    }
    this.#busy--;
    if (this.#busy === 0) this.#drained?.();
  }

  #openSession(): Handle {
    let s: Handle;
    try {
      s = this.#lib.C_OpenSession(this.#slot, P11.CKF_SERIAL_SESSION | P11.CKF_RW_SESSION);
    } catch (e) {
      throw tokenFailed("C_OpenSession", e);
    }
    this.#open++;
    try {
      this.#login(s);
    } catch (e) {
      this.#closeSession(s);
      throw e;
    }
    return s;
  }

  #login(s: Handle): void {
    const state = this.#lib.C_GetSessionInfo(s).state;
    if (state === CKS_RW_USER_FUNCTIONS) return; // the token keeps one login per application
    if (state !== CKS_RW_PUBLIC_SESSION) {
      throw new MayflyError(
        "key.token_login_failed",
        "the token is logged in as its security officer by this process; CA keys need the user role",
      );
    }
    try {
      this.#lib.C_Login(s, P11.CKU_USER, this.#pin);
    } catch (e) {
      const code = ckr(e);
      if (code === P11.CKR_USER_ALREADY_LOGGED_IN) return;
      if (code !== undefined && LOGIN_REFUSED.has(code)) {
        this.#refused = new MayflyError(
          "key.token_login_failed",
          `the token refused the user PIN from ${this.#pinSource} (${(e as Error).message})`,
          { cause: e },
        );
        throw this.#refused;
      }
      throw tokenFailed("C_Login", e);
    }
  }

  #closeSession(s: Handle): void {
    this.#open--;
    try {
      this.#lib.C_CloseSession(s);
    } catch {
      // already gone with the token; nothing to release
    }
  }
}
