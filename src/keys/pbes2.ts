import { createCipheriv, createDecipheriv, pbkdf2 } from "node:crypto";
import { promisify } from "node:util";
import { MayflyError } from "../errors/index.js";
import type { Random } from "../runtime/clock.js";
import { DerError, DerReader, seq, TAG, tlv, uint } from "./der.js";

/**
 * Encrypted PKCS#8 (RFC 5958 EncryptedPrivateKeyInfo) with PBES2 (RFC 8018):
 * PBKDF2-HMAC-SHA256 + AES-256-CBC, the combination every OpenSSL since 1.0 reads.
 *
 * We encode it ourselves instead of using KeyObject.export({ cipher, passphrase }):
 * on Node 20 / OpenSSL 3.0 that writes PBKDF2 with 2,048 iterations and an 8-byte
 * salt, which costs an attacker with the file ~0.3 ms per guess. 600,000 iterations
 * is OWASP's 2023 figure for PBKDF2-HMAC-SHA256 (~0.1 s per guess here, paid once
 * per key at start-up because signers are cached).
 */
export const PBKDF2_ITERATIONS = 600_000;
/** Reading refuses weaker files: a CA key must not be protected less than we would protect it. */
export const MIN_PBKDF2_ITERATIONS = 600_000;
/** Upper bound so that a crafted file cannot stall start-up for hours. */
export const MAX_PBKDF2_ITERATIONS = 10_000_000;

const SALT_BYTES = 16;
const IV_BYTES = 16;
const PEM_LABEL = "ENCRYPTED PRIVATE KEY";

// OID contents (without tag and length).
const OID = {
  pbes2: Buffer.from("2a864886f70d01050d", "hex"), // 1.2.840.113549.1.5.13
  pbkdf2: Buffer.from("2a864886f70d01050c", "hex"), // 1.2.840.113549.1.5.12
  hmacWithSHA256: Buffer.from("2a864886f70d0209", "hex"), // 1.2.840.113549.2.9
  aes256cbc: Buffer.from("60864801650304012a", "hex"), // 2.16.840.1.101.3.4.1.42
} as const;
const oid = (content: Buffer): Buffer => tlv(TAG.OID, content);
const NULL = Buffer.from([TAG.NULL, 0]);

const pbkdf2Async = promisify(pbkdf2);

function deriveKey(passphrase: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return pbkdf2Async(Buffer.from(passphrase, "utf8"), salt, iterations, 32, "sha256");
}

export async function encryptPkcs8(
  pkcs8: Buffer,
  passphrase: string,
  random: Random,
  iterations = PBKDF2_ITERATIONS,
): Promise<string> {
  const salt = random.bytes(SALT_BYTES);
  const iv = random.bytes(IV_BYTES);
  const key = await deriveKey(passphrase, salt, iterations);
  try {
    const c = createCipheriv("aes-256-cbc", key, iv);
    const encrypted = Buffer.concat([c.update(pkcs8), c.final()]);
    const prf = seq(oid(OID.hmacWithSHA256), NULL);
    const kdf = seq(oid(OID.pbkdf2), seq(tlv(TAG.OCTET_STRING, salt), uint(iterations), prf));
    const enc = seq(oid(OID.aes256cbc), tlv(TAG.OCTET_STRING, iv));
    const der = seq(seq(oid(OID.pbes2), seq(kdf, enc)), tlv(TAG.OCTET_STRING, encrypted));
    const b64 = der.toString("base64").replace(/.{64}/g, "$&\n");
    return `-----BEGIN ${PEM_LABEL}-----\n${b64.replace(/\n$/, "")}\n-----END ${PEM_LABEL}-----\n`;
  } finally {
    key.fill(0);
  }
}

type Parsed = { salt: Buffer; iterations: number; iv: Buffer; data: Buffer };

function fail(label: string, detail: string, opts: { field?: string; cause?: unknown } = {}): MayflyError {
  return new MayflyError("key.decrypt_failed", `key ${label}: ${detail}`, opts);
}

/** Unwraps the single PEM block; refuses plaintext keys with their own code. */
function pemBody(text: string, label: string): Buffer {
  if (/-----BEGIN (RSA |EC )?PRIVATE KEY-----/.test(text)) {
    if (/Proc-Type:\s*4,ENCRYPTED/.test(text)) {
      throw fail(
        label,
        "legacy OpenSSL PEM encryption (MD5 key derivation) is not accepted; convert to PKCS#8 PBES2",
      );
    }
    throw new MayflyError("key.not_encrypted", `key ${label} is stored unencrypted; refusing to use it`);
  }
  const m = /^\s*-----BEGIN ([A-Z0-9 ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+?)\r?\n-----END \1-----\s*$/.exec(text);
  if (!m || m[1] !== PEM_LABEL) throw fail(label, `file is not a single "${PEM_LABEL}" PEM block`);
  const b64 = m[2]!.replace(/\r?\n/g, "");
  const der = Buffer.from(b64, "base64");
  if (der.toString("base64") !== b64) throw fail(label, "PEM body is not canonical base64");
  return der;
}

function parse(der: Buffer): Parsed {
  const top = new DerReader(der, "");
  const epki = top.sub(TAG.SEQUENCE, "EncryptedPrivateKeyInfo");
  top.end();
  const alg = epki.sub(TAG.SEQUENCE, "encryptionAlgorithm");
  if (!alg.read(TAG.OID, "algorithm").equals(OID.pbes2)) throw new DerError(alg.at("algorithm"), "not PBES2");
  const params = alg.sub(TAG.SEQUENCE, "parameters");
  alg.end();
  const kdf = params.sub(TAG.SEQUENCE, "keyDerivationFunc");
  if (!kdf.read(TAG.OID, "algorithm").equals(OID.pbkdf2))
    throw new DerError(kdf.at("algorithm"), "not PBKDF2");
  const kp = kdf.sub(TAG.SEQUENCE, "parameters");
  kdf.end();
  const salt = kp.read(TAG.OCTET_STRING, "salt");
  const iterations = kp.uint("iterationCount");
  if (kp.peekTag() === TAG.INTEGER && kp.uint("keyLength") !== 32)
    throw new DerError(kp.at("keyLength"), "not 32");
  // An absent PRF means HMAC-SHA1 (RFC 8018 default); only SHA-256 is accepted.
  if (kp.done) throw new DerError(kp.at("prf"), "absent, meaning HMAC-SHA1; only hmacWithSHA256 is accepted");
  const prf = kp.sub(TAG.SEQUENCE, "prf");
  if (!prf.read(TAG.OID, "algorithm").equals(OID.hmacWithSHA256)) {
    throw new DerError(prf.at("algorithm"), "PRF is not hmacWithSHA256");
  }
  if (!prf.done) prf.read(TAG.NULL, "parameters");
  prf.end();
  kp.end();
  const enc = params.sub(TAG.SEQUENCE, "encryptionScheme");
  params.end();
  if (!enc.read(TAG.OID, "algorithm").equals(OID.aes256cbc))
    throw new DerError(enc.at("algorithm"), "not AES-256-CBC");
  const iv = enc.read(TAG.OCTET_STRING, "iv");
  enc.end();
  const data = epki.read(TAG.OCTET_STRING, "encryptedData");
  epki.end();
  if (salt.length < 8 || iv.length !== IV_BYTES || data.length === 0 || data.length % 16 !== 0) {
    throw new DerError("EncryptedPrivateKeyInfo", "bad salt, IV or ciphertext length");
  }
  return { salt, iterations, iv, data };
}

/** Returns the PKCS#8 PrivateKeyInfo DER; the caller should zero it once imported. */
export async function decryptPkcs8(pem: string, passphrase: string, label: string): Promise<Buffer> {
  let p: Parsed;
  try {
    p = parse(pemBody(pem, label));
  } catch (e) {
    if (e instanceof DerError)
      throw fail(label, `unsupported or malformed encryption: ${e.message}`, { field: e.field });
    throw e;
  }
  if (p.iterations < MIN_PBKDF2_ITERATIONS || p.iterations > MAX_PBKDF2_ITERATIONS) {
    throw fail(
      label,
      `PBKDF2 iteration count ${p.iterations} outside [${MIN_PBKDF2_ITERATIONS}, ${MAX_PBKDF2_ITERATIONS}]`,
    );
  }
  const key = await deriveKey(passphrase, p.salt, p.iterations);
  try {
    const d = createDecipheriv("aes-256-cbc", key, p.iv);
    const parts = [d.update(p.data), d.final()];
    const out = Buffer.concat(parts);
    for (const b of parts) b.fill(0);
    return out;
  } catch {
    // A bad padding block is what a wrong passphrase looks like; the cause adds nothing.
    throw fail(label, "wrong passphrase or damaged file");
  } finally {
    key.fill(0);
  }
}
