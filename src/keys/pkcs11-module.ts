import { realpathSync } from "node:fs";
import pkcs11js from "pkcs11js";
import { MayflyError } from "../errors/index.js";

export type Pkcs11Lib = pkcs11js.PKCS11;
export type Handle = Buffer;
/** The CKA_/CKM_/CKR_ constants of the PKCS#11 specification. */
export const P11 = pkcs11js;

/** A loaded, initialised PKCS#11 module shared by every key store in the process that names it. */
export interface Pkcs11Module {
  readonly lib: Pkcs11Lib;
  readonly path: string;
  /** Finalises and unloads the module when its last user releases it; idempotent per handle. */
  release(): void;
}

type Entry = { lib: Pkcs11Lib; refs: number; owned: boolean };

// C_Initialize and C_Finalize are process-wide: two stores on one module must share one
// initialisation, and finalising while another store signs would pull its sessions away.
const modules = new Map<string, Entry>();

// pkcs11js wraps most calls' failures in a Pkcs11Error with a numeric code; a few
// (C_SetAttributeValue among them) throw a plain Error whose message is "CKR_NAME:code".
const CKR_MESSAGE = /^(CKR_[A-Z0-9_]+)(?::(\d+))?/;

/** The CKR_ code of a PKCS#11 error from pkcs11js, or undefined for anything else. */
export function ckr(e: unknown): number | undefined {
  if (!(e instanceof Error)) return undefined;
  const code = (e as { code?: unknown }).code;
  if (e.name === "Pkcs11Error" && typeof code === "number") return code;
  const m = CKR_MESSAGE.exec(e.message);
  return m?.[2] === undefined ? undefined : Number(m[2]);
}

/** The CKR_ name (e.g. CKR_PIN_INCORRECT) for messages; never carries data. */
export function ckrName(e: unknown): string {
  return (e instanceof Error && CKR_MESSAGE.exec(e.message)?.[1]) || "error";
}

/** Any PKCS#11 failure we do not handle specifically: the token is unwell or refused. */
export function tokenFailed(what: string, e: unknown): MayflyError {
  if (e instanceof MayflyError) return e;
  return new MayflyError("key.token_failed", `PKCS#11 ${what} failed (${ckrName(e)})`, { cause: e });
}

function moduleKey(path: string): string {
  // A bare library name is found by the dynamic loader; a path is canonicalised so that
  // two spellings of one library share one initialisation.
  if (!path.includes("/")) return path;
  try {
    return realpathSync(path);
  } catch (e) {
    throw new MayflyError(
      "config.invalid",
      `PKCS#11 module ${path} cannot be found (${(e as NodeJS.ErrnoException).code ?? "error"})`,
      { field: "module", cause: e },
    );
  }
}

export function acquireModule(path: string): Pkcs11Module {
  if (path === "")
    throw new MayflyError("config.invalid", "the PKCS#11 module path is empty", { field: "module" });
  const key = moduleKey(path);
  let entry = modules.get(key);
  if (!entry) {
    const lib = new pkcs11js.PKCS11();
    try {
      lib.load(key);
    } catch (e) {
      throw new MayflyError(
        "config.invalid",
        `PKCS#11 module ${path} cannot be loaded: ${(e as Error).message}`,
        {
          field: "module",
          cause: e,
        },
      );
    }
    let owned = true;
    try {
      // OS locking: signing runs on libuv worker threads, several sessions at once.
      lib.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
    } catch (e) {
      if (ckr(e) !== pkcs11js.CKR_CRYPTOKI_ALREADY_INITIALIZED) {
        lib.close();
        throw tokenFailed(`C_Initialize of ${path}`, e);
      }
      owned = false; // someone else in the process initialised it; they finalise it
    }
    entry = { lib, refs: 0, owned };
    modules.set(key, entry);
  }
  entry.refs++;
  const e = entry;
  let released = false;
  return {
    lib: e.lib,
    path: key,
    release() {
      if (released) return;
      released = true;
      if (--e.refs > 0) return;
      modules.delete(key);
      try {
        if (e.owned) e.lib.C_Finalize();
      } finally {
        e.lib.close();
      }
    },
  };
}

/** PKCS#11 strings are fixed-width and blank-padded. */
function unpad(s: string): string {
  return s.replace(/[ \0]+$/, "");
}

/**
 * The slot holding the initialised token labelled `label`. Several tokens with one
 * label would make the choice arbitrary, so that is refused too.
 */
export function findTokenSlot(lib: Pkcs11Lib, label: string): Handle {
  const seen: string[] = [];
  const matches: Handle[] = [];
  for (const slot of lib.C_GetSlotList(true)) {
    let info: pkcs11js.TokenInfo;
    try {
      info = lib.C_GetTokenInfo(slot);
    } catch {
      continue; // a slot whose token went away between the two calls
    }
    if ((info.flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0) continue;
    const l = unpad(info.label);
    seen.push(l);
    if (l === label) matches.push(slot);
  }
  if (matches.length === 1) return matches[0]!;
  const detail =
    matches.length === 0
      ? `no initialised token labelled ${JSON.stringify(label)} (tokens: ${seen.map((s) => JSON.stringify(s)).join(", ") || "none"})`
      : `${matches.length} tokens are labelled ${JSON.stringify(label)}; relabel all but one`;
  throw new MayflyError("config.invalid", detail, { field: "tokenLabel" });
}
