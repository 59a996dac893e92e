// Command-side identifiers from TPM 2.0 Library Part 2. The wire-format constants shared with
// the CA (algorithms, object attributes, hierarchies) live in ../constants.ts.

/** TPM_CC (Part 2 §6.5): only the commands this client sends. */
export const TPM_CC = {
  EvictControl: 0x120,
  CreatePrimary: 0x131,
  Startup: 0x144,
  Shutdown: 0x145,
  ActivateCredential: 0x147,
  Certify: 0x148,
  NV_Read: 0x14e,
  PolicySecret: 0x151,
  Create: 0x153,
  Load: 0x157,
  Quote: 0x158,
  Sign: 0x15d,
  FlushContext: 0x165,
  NV_ReadPublic: 0x169,
  ReadPublic: 0x173,
  StartAuthSession: 0x176,
  GetCapability: 0x17a,
  GetRandom: 0x17b,
  PCR_Read: 0x17e,
  PolicyGetDigest: 0x189,
} as const;

/** TPM_ST command/response tags and ticket tags (Part 2 §6.9). */
export const TPM_ST_NO_SESSIONS = 0x8001;
export const TPM_ST_SESSIONS = 0x8002;
export const TPM_ST_CREATION = 0x8021;
export const TPM_ST_VERIFIED = 0x8022;
export const TPM_ST_AUTH_SECRET = 0x8023;
export const TPM_ST_HASHCHECK = 0x8024;
export const TPM_ST_AUTH_SIGNED = 0x8025;

/** Permanent handles beyond the hierarchies in ../constants.ts (Part 2 §7.4). */
export const TPM_RS_PW = 0x40000009;
export const TPM_RH_LOCKOUT = 0x4000000a;

/** TPM_HT: the top byte of a handle says what it refers to (Part 2 §7.2). */
export const TPM_HT = {
  PCR: 0x00000000,
  NV_INDEX: 0x01000000,
  HMAC_SESSION: 0x02000000,
  POLICY_SESSION: 0x03000000,
  PERMANENT: 0x40000000,
  TRANSIENT: 0x80000000,
  PERSISTENT: 0x81000000,
} as const;

/** TPM_SE session types (Part 2 §6.11). */
export const TPM_SE = { HMAC: 0x00, POLICY: 0x01, TRIAL: 0x03 } as const;

/** TPM_SU startup/shutdown types (Part 2 §6.10). */
export const TPM_SU = { CLEAR: 0x0000, STATE: 0x0001 } as const;

/** TPMA_SESSION bits (Part 2 §8.4). */
export const TPMA_SESSION = { continueSession: 0x01 } as const;

/** TPM_CAP (Part 2 §6.12). */
export const TPM_CAP = {
  ALGS: 0x00000000,
  HANDLES: 0x00000001,
  PCRS: 0x00000005,
  TPM_PROPERTIES: 0x00000006,
} as const;

/** TPM_PT (Part 2 §6.13): fixed (0x100) and variable (0x200) properties this client reads. */
export const TPM_PT = {
  FAMILY_INDICATOR: 0x100,
  MANUFACTURER: 0x105,
  VENDOR_STRING_1: 0x106,
  FIRMWARE_VERSION_1: 0x10b,
  FIRMWARE_VERSION_2: 0x10c,
  INPUT_BUFFER: 0x10d,
  PCR_COUNT: 0x112,
  MAX_COMMAND_SIZE: 0x11e,
  MAX_RESPONSE_SIZE: 0x11f,
  MAX_DIGEST: 0x120,
  NV_BUFFER_MAX: 0x12c,
  PERMANENT: 0x200,
  STARTUP_CLEAR: 0x201,
  HR_LOADED: 0x203,
  HR_LOADED_AVAIL: 0x204,
  HR_TRANSIENT_AVAIL: 0x207,
  HR_PERSISTENT_AVAIL: 0x209,
  LOCKOUT_COUNTER: 0x20e,
  MAX_AUTH_FAIL: 0x20f,
} as const;

/**
 * EK certificate NV indices (TCG EK Credential Profile 2.5 §2.2.1.5): RSA-2048 (L-1) and
 * P-256 (L-2) in the low range, P-384 (H-3) in the high range. swtpm 0.7.1 writes the P-384
 * one at 0x01c00016 and no P-256 one at all.
 */
export const EK_CERT_NV_INDEX = {
  rsa2048: 0x01c00002,
  ecc256: 0x01c0000a,
  ecc384: 0x01c00016,
} as const;

/** The key shapes Mayfly creates in a TPM: EKs, AKs and signing keys. */
export type TpmKeyKind = keyof typeof EK_CERT_NV_INDEX;
export const TPM_KEY_KINDS: readonly TpmKeyKind[] = ["rsa2048", "ecc256", "ecc384"];
