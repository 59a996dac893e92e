import { malformed } from "./errors.js";

/**
 * A strict big-endian cursor over TPM wire bytes. Every read names the field it reads, so a
 * short or oversized input fails with tpm.malformed pointing at the exact structure member.
 * It never reads past the end and never allocates from an unchecked length.
 */
export class TpmReader {
  private pos = 0;
  private readonly buf: Buffer;

  constructor(bytes: Uint8Array) {
    this.buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number, field: string): void {
    if (n > this.remaining) {
      throw malformed(field, `needs ${n} byte(s) at offset ${this.pos}, ${this.remaining} remain`);
    }
  }

  u8(field: string): number {
    this.need(1, field);
    return this.buf.readUInt8(this.pos++);
  }

  u16(field: string): number {
    this.need(2, field);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u32(field: string): number {
    this.need(4, field);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(field: string): bigint {
    this.need(8, field);
    const v = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A copy, so callers may keep it without pinning (or being changed through) the input. */
  bytes(n: number, field: string): Buffer {
    this.need(n, field);
    const out = Buffer.from(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }

  /** A TPM2B: u16 size then that many bytes; the size is checked against `max` before reading. */
  tpm2b(field: string, max: number): Buffer {
    const size = this.u16(`${field}.size`);
    if (size > max) throw malformed(`${field}.size`, `${size} exceeds the maximum of ${max}`);
    return this.bytes(size, field);
  }

  /** Every byte must be consumed: trailing data is how a second structure gets smuggled in. */
  expectEnd(field: string): void {
    if (this.remaining !== 0) {
      throw malformed(field, `${this.remaining} trailing byte(s) at offset ${this.pos}`);
    }
  }
}
