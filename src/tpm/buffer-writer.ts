import { malformed } from "./errors.js";

/**
 * A big-endian builder for TPM wire bytes. Values are range-checked so a bad in-memory
 * structure fails at marshal time (tpm.malformed with the field) instead of truncating.
 */
export class TpmWriter {
  private readonly parts: Buffer[] = [];

  private int(v: number, bytes: 1 | 2 | 4, field: string): this {
    const max = 2 ** (8 * bytes) - 1;
    if (!Number.isInteger(v) || v < 0 || v > max) throw malformed(field, `${v} is not a u${8 * bytes}`);
    const b = Buffer.alloc(bytes);
    b.writeUIntBE(v, 0, bytes);
    this.parts.push(b);
    return this;
  }

  u8(v: number, field: string): this {
    return this.int(v, 1, field);
  }

  u16(v: number, field: string): this {
    return this.int(v, 2, field);
  }

  u32(v: number, field: string): this {
    return this.int(v, 4, field);
  }

  u64(v: bigint, field: string): this {
    if (v < 0n || v > 0xffffffffffffffffn) throw malformed(field, `${v} is not a u64`);
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }

  bytes(b: Uint8Array): this {
    this.parts.push(Buffer.from(b));
    return this;
  }

  tpm2b(b: Uint8Array, field: string, max: number): this {
    if (b.length > max) throw malformed(`${field}.size`, `${b.length} exceeds the maximum of ${max}`);
    this.u16(b.length, `${field}.size`);
    return this.bytes(b);
  }

  finish(): Buffer {
    return Buffer.concat(this.parts);
  }
}

/** Wraps already-marshalled bytes as a TPM2B (u16 size prefix). */
export function toTpm2b(body: Uint8Array, field: string, max = 0xffff): Buffer {
  return new TpmWriter().tpm2b(body, field, max).finish();
}
