// Numeric identifiers from the TPM 2.0 Library spec, Part 2 (Structures). Only the values
// Mayfly reads or writes are listed; anything else is reported as unsupported by the parsers.

/** TPM_ALG_ID (Part 2 §6.3). */
export const TPM_ALG = {
  RSA: 0x0001,
  SHA1: 0x0004,
  HMAC: 0x0005,
  AES: 0x0006,
  MGF1: 0x0007,
  KEYEDHASH: 0x0008,
  XOR: 0x000a,
  SHA256: 0x000b,
  SHA384: 0x000c,
  SHA512: 0x000d,
  NULL: 0x0010,
  SM3_256: 0x0012,
  SM4: 0x0013,
  RSASSA: 0x0014,
  RSAES: 0x0015,
  RSAPSS: 0x0016,
  OAEP: 0x0017,
  ECDSA: 0x0018,
  ECDH: 0x0019,
  ECDAA: 0x001a,
  SM2: 0x001b,
  ECSCHNORR: 0x001c,
  ECMQV: 0x001d,
  KDF1_SP800_56A: 0x0020,
  KDF2: 0x0021,
  KDF1_SP800_108: 0x0022,
  ECC: 0x0023,
  SYMCIPHER: 0x0025,
  CAMELLIA: 0x0026,
  SHA3_256: 0x0027,
  SHA3_384: 0x0028,
  SHA3_512: 0x0029,
  CTR: 0x0040,
  OFB: 0x0041,
  CBC: 0x0042,
  CFB: 0x0043,
  ECB: 0x0044,
} as const;

/** TPM_ECC_CURVE (Part 2 §6.4). */
export const TPM_ECC_CURVE = {
  NONE: 0x0000,
  NIST_P192: 0x0001,
  NIST_P224: 0x0002,
  NIST_P256: 0x0003,
  NIST_P384: 0x0004,
  NIST_P521: 0x0005,
  BN_P256: 0x0010,
  BN_P638: 0x0011,
  SM2_P256: 0x0020,
} as const;

/** Coordinate size in bytes per curve: bounds TPMS_ECC_POINT coordinates strictly. */
export const ECC_CURVE_BYTES: Readonly<Record<number, number>> = {
  [TPM_ECC_CURVE.NIST_P192]: 24,
  [TPM_ECC_CURVE.NIST_P224]: 28,
  [TPM_ECC_CURVE.NIST_P256]: 32,
  [TPM_ECC_CURVE.NIST_P384]: 48,
  [TPM_ECC_CURVE.NIST_P521]: 66,
  [TPM_ECC_CURVE.BN_P256]: 32,
  [TPM_ECC_CURVE.BN_P638]: 80,
  [TPM_ECC_CURVE.SM2_P256]: 32,
};

/** TPMA_OBJECT bits (Part 2 §8.3). */
export const TPMA_OBJECT = {
  fixedTPM: 1 << 1,
  stClear: 1 << 2,
  fixedParent: 1 << 4,
  sensitiveDataOrigin: 1 << 5,
  userWithAuth: 1 << 6,
  adminWithPolicy: 1 << 7,
  noDA: 1 << 10,
  encryptedDuplication: 1 << 11,
  restricted: 1 << 16,
  decrypt: 1 << 17,
  sign: 1 << 18,
  x509sign: 1 << 19,
} as const;

/** Bits a TPM must leave clear (TPM_RC_RESERVED_BITS); a public area with any set is rejected. */
export const TPMA_OBJECT_RESERVED = 0xfff0f309;

/** TPM_ST attestation structure tags (Part 2 §6.9). */
export const TPM_ST = {
  ATTEST_NV: 0x8014,
  ATTEST_COMMAND_AUDIT: 0x8015,
  ATTEST_SESSION_AUDIT: 0x8016,
  ATTEST_CERTIFY: 0x8017,
  ATTEST_QUOTE: 0x8018,
  ATTEST_TIME: 0x8019,
  ATTEST_CREATION: 0x801a,
  CREATION: 0x8021,
} as const;

/** TPM_GENERATED_VALUE: "\xffTCG", the first four bytes of everything a TPM signs itself. */
export const TPM_GENERATED_VALUE = 0xff544347;

/** Permanent hierarchy handles (Part 2 §7.4); a primary key's parent QN is its hierarchy's handle. */
export const TPM_RH = {
  OWNER: 0x40000001,
  NULL: 0x40000007,
  ENDORSEMENT: 0x4000000b,
  PLATFORM: 0x4000000c,
} as const;

/** Size bounds from the reference implementation (Part 2 §10, Part 4 TpmProfile). */
export const MAX_DIGEST_BYTES = 64; // sizeof(TPMU_HA)
export const MAX_NAME_BYTES = 2 + MAX_DIGEST_BYTES; // sizeof(TPMU_NAME)
export const MAX_DATA_BYTES = 2 + MAX_DIGEST_BYTES; // TPM2B_DATA: sizeof(TPMT_HA)
export const MAX_RSA_KEY_BYTES = 512; // RSA-4096
export const MAX_ECC_KEY_BYTES = 80; // BN_P638
export const MAX_PCR_SELECT_BYTES = 32; // 256 PCRs: far beyond any real TPM (24)
export const MAX_PCR_BANKS = 16; // HASH_COUNT bound for TPML_PCR_SELECTION.count
