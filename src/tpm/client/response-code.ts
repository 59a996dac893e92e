import { MayflyError } from "../../errors/index.js";

// TPM_RC decoding (Part 2 §6.6). A response code is either format-zero (a plain error or
// warning number) or format-one (an error number plus which handle, session or parameter it
// is about). Callers and tests match on the base name, e.g. TPM_RC_INTEGRITY, and on the
// position, e.g. parameter 1, rather than on the raw number that mixes both.

const RC_VER1 = 0x100;
const RC_FMT1 = 0x080;
const RC_WARN = 0x900;

/** Format-one error numbers (E, bits 0-5), named by their base code RC_FMT1 + E. */
const FMT1_NAMES: Readonly<Record<number, string>> = {
  1: "ASYMMETRIC",
  2: "ATTRIBUTES",
  3: "HASH",
  4: "VALUE",
  5: "HIERARCHY",
  7: "KEY_SIZE",
  8: "MGF",
  9: "MODE",
  10: "TYPE",
  11: "HANDLE",
  12: "KDF",
  13: "RANGE",
  14: "AUTH_FAIL",
  15: "NONCE",
  16: "PP",
  18: "SCHEME",
  21: "SIZE",
  22: "SYMMETRIC",
  23: "TAG",
  24: "SELECTOR",
  26: "INSUFFICIENT",
  27: "SIGNATURE",
  28: "KEY",
  29: "POLICY_FAIL",
  31: "INTEGRITY",
  32: "TICKET",
  33: "RESERVED_BITS",
  34: "BAD_AUTH",
  35: "EXPIRED",
  36: "POLICY_CC",
  37: "BINDING",
  38: "CURVE",
  39: "ECC_POINT",
};

/** Format-zero codes, by full value (RC_VER1 errors and RC_WARN warnings). */
const FMT0_NAMES: Readonly<Record<number, string>> = {
  [RC_VER1 + 0x00]: "INITIALIZE",
  [RC_VER1 + 0x01]: "FAILURE",
  [RC_VER1 + 0x03]: "SEQUENCE",
  [RC_VER1 + 0x0b]: "PRIVATE",
  [RC_VER1 + 0x19]: "HMAC",
  [RC_VER1 + 0x20]: "DISABLED",
  [RC_VER1 + 0x21]: "EXCLUSIVE",
  [RC_VER1 + 0x24]: "AUTH_TYPE",
  [RC_VER1 + 0x25]: "AUTH_MISSING",
  [RC_VER1 + 0x26]: "POLICY",
  [RC_VER1 + 0x27]: "PCR",
  [RC_VER1 + 0x28]: "PCR_CHANGED",
  [RC_VER1 + 0x2d]: "UPGRADE",
  [RC_VER1 + 0x2e]: "TOO_MANY_CONTEXTS",
  [RC_VER1 + 0x2f]: "AUTH_UNAVAILABLE",
  [RC_VER1 + 0x30]: "REBOOT",
  [RC_VER1 + 0x31]: "UNBALANCED",
  [RC_VER1 + 0x42]: "COMMAND_SIZE",
  [RC_VER1 + 0x43]: "COMMAND_CODE",
  [RC_VER1 + 0x44]: "AUTHSIZE",
  [RC_VER1 + 0x45]: "AUTH_CONTEXT",
  [RC_VER1 + 0x46]: "NV_RANGE",
  [RC_VER1 + 0x47]: "NV_SIZE",
  [RC_VER1 + 0x48]: "NV_LOCKED",
  [RC_VER1 + 0x49]: "NV_AUTHORIZATION",
  [RC_VER1 + 0x4a]: "NV_UNINITIALIZED",
  [RC_VER1 + 0x4b]: "NV_SPACE",
  [RC_VER1 + 0x4c]: "NV_DEFINED",
  [RC_VER1 + 0x50]: "BAD_CONTEXT",
  [RC_VER1 + 0x51]: "CPHASH",
  [RC_VER1 + 0x52]: "PARENT",
  [RC_VER1 + 0x53]: "NEEDS_TEST",
  [RC_VER1 + 0x54]: "NO_RESULT",
  [RC_VER1 + 0x55]: "SENSITIVE",
  [RC_WARN + 0x01]: "CONTEXT_GAP",
  [RC_WARN + 0x02]: "OBJECT_MEMORY",
  [RC_WARN + 0x03]: "SESSION_MEMORY",
  [RC_WARN + 0x04]: "MEMORY",
  [RC_WARN + 0x05]: "SESSION_HANDLES",
  [RC_WARN + 0x06]: "OBJECT_HANDLES",
  [RC_WARN + 0x07]: "LOCALITY",
  [RC_WARN + 0x08]: "YIELDED",
  [RC_WARN + 0x09]: "CANCELED",
  [RC_WARN + 0x0a]: "TESTING",
  [RC_WARN + 0x20]: "NV_RATE",
  [RC_WARN + 0x21]: "LOCKOUT",
  [RC_WARN + 0x22]: "RETRY",
  [RC_WARN + 0x23]: "NV_UNAVAILABLE",
};

/** The codes libtpms answers while busy; the command was not executed and may be resent (G19). */
export const RETRYABLE_RCS: ReadonlySet<number> = new Set([RC_WARN + 0x22, RC_WARN + 0x08, RC_WARN + 0x0a]);

export interface DecodedResponseCode {
  readonly rc: number;
  /** The code without position bits: what TPM_RC_<name> stands for. */
  readonly base: number;
  /** "TPM_RC_INTEGRITY", or "TPM_RC_0x…" for a code without a name here. */
  readonly name: string;
  readonly format: "zero" | "one";
  /** Format-zero severity bit: a warning means the command may succeed later. */
  readonly warning: boolean;
  /** Format-zero T bit: a vendor-defined code. */
  readonly vendor: boolean;
  /** Format-one position: 1-based; absent when the TPM did not say. */
  readonly parameter?: number;
  readonly handle?: number;
  readonly session?: number;
}

const hex = (n: number) => `0x${n.toString(16)}`;

export function decodeResponseCode(rc: number): DecodedResponseCode {
  if (rc > 0xffff) {
    // Bits above 15 are TSS layer numbers; a TPM never sets them.
    return { rc, base: rc, name: `TSS_RC_${hex(rc)}`, format: "zero", warning: false, vendor: false };
  }
  if (rc & RC_FMT1) {
    const e = rc & 0x3f;
    const n = (rc >> 8) & 0xf;
    const base = RC_FMT1 + e;
    const name = `TPM_RC_${FMT1_NAMES[e] ?? hex(base)}`;
    const common = { rc, base, name, format: "one" as const, warning: false, vendor: false };
    if (rc & 0x40) return n === 0 ? common : { ...common, parameter: n };
    if (n === 0) return common;
    return n & 0x8 ? { ...common, session: n & 0x7 } : { ...common, handle: n & 0x7 };
  }
  const vendor = (rc & 0x400) !== 0;
  const warning = (rc & 0x800) !== 0;
  if (!(rc & RC_VER1)) {
    // V clear: a TPM 1.2 code (0 is success and never decoded as an error).
    return { rc, base: rc, name: `TPM_RC_TPM12_${hex(rc)}`, format: "zero", warning, vendor };
  }
  const known = vendor ? undefined : FMT0_NAMES[rc];
  const name = known ? `TPM_RC_${known}` : `TPM_RC_${vendor ? "VENDOR_" : ""}${hex(rc)}`;
  return { rc, base: rc, name, format: "zero", warning, vendor };
}

/** "TPM_RC_INTEGRITY (0x1df), parameter 1" */
export function describeResponseCode(d: DecodedResponseCode): string {
  const where =
    d.parameter !== undefined
      ? `, parameter ${d.parameter}`
      : d.handle !== undefined
        ? `, handle ${d.handle}`
        : d.session !== undefined
          ? `, session ${d.session}`
          : "";
  return `${d.name} (${hex(d.rc)})${where}`;
}

/** tpm.command_failed, carrying the raw and decoded response code in `extra`. */
export function commandFailed(command: string, rc: number): MayflyError {
  const d = decodeResponseCode(rc);
  return new MayflyError("tpm.command_failed", `${command}: ${describeResponseCode(d)}`, {
    field: command,
    extra: { command, ...d },
  });
}
