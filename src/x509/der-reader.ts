import { type ErrorCode, MayflyError } from "../errors/index.js";
import { TAG_BIT_STRING, TAG_INTEGER, TAG_OID } from "./der.js";

// A strict DER reader for the structures Mayfly parses itself (CSRs, the Mayfly
// extension, issuer certificates). Strict means: definite minimal lengths only,
// single-octet tags only, nothing may run past its parent, and a reader must be
// closed with `end()` so that trailing bytes are an error naming the structure.

export interface Tlv {
  readonly tag: number;
  /** The whole encoding, header included. */
  readonly raw: Buffer;
  readonly content: Buffer;
}

// Decoded OID texts by their content octets: the same dozen OIDs recur in every CSR and
// leaf, and decoding goes through BigInt. Only successful decodes are kept (a content that
// failed is decoded, and refused, every time). Bounded; once full, new OIDs (say, odd
// subject attribute types in CSRs) are decoded each time and nothing is evicted.
const oidTexts = new Map<string, string>();
const OID_CACHE_MAX = 512;

export class DerReader {
  private pos = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly code: ErrorCode,
    /** Name of the structure being read, used in error fields. */
    readonly field: string,
  ) {}

  fail(field: string, detail: string): never {
    throw new MayflyError(this.code, detail, { field });
  }

  atEnd(): boolean {
    return this.pos >= this.buf.length;
  }

  peekTag(): number | undefined {
    return this.buf[this.pos];
  }

  /** Reads the next TLV, whatever its tag. */
  any(field: string): Tlv {
    const start = this.pos;
    const b = this.buf;
    if (start >= b.length) this.fail(field, `${field} is missing`);
    const tag = b[start]!;
    if ((tag & 0x1f) === 0x1f) this.fail(field, `${field} uses a multi-octet tag`);
    if (start + 1 >= b.length) this.fail(field, `${field} is truncated`);
    let len = b[start + 1]!;
    let off = start + 2;
    if (len & 0x80) {
      const n = len & 0x7f;
      if (n === 0) this.fail(field, `${field} uses an indefinite length`);
      if (n > 4) this.fail(field, `${field} length is too large`);
      if (off + n > b.length) this.fail(field, `${field} is truncated`);
      if (b[off] === 0) this.fail(field, `${field} length is not minimal`);
      len = 0;
      for (let i = 0; i < n; i++) len = len * 256 + b[off + i]!;
      if (len < 0x80) this.fail(field, `${field} length is not minimal`);
      off += n;
    }
    if (off + len > b.length) this.fail(field, `${field} is truncated`);
    this.pos = off + len;
    return { tag, raw: b.subarray(start, off + len), content: b.subarray(off, off + len) };
  }

  /** Reads the next TLV and requires its tag. */
  expect(tag: number, field: string): Tlv {
    const t = this.peekTag();
    if (t !== tag) {
      const got = t === undefined ? "nothing" : `tag 0x${t.toString(16)}`;
      this.fail(field, `${field}: expected tag 0x${tag.toString(16)}, found ${got}`);
    }
    return this.any(field);
  }

  /** Reads the next TLV if it has `tag`, else nothing. */
  optional(tag: number, field: string): Tlv | undefined {
    return this.peekTag() === tag ? this.any(field) : undefined;
  }

  /** A reader over a constructed TLV's content. */
  enter(tag: number, field: string): DerReader {
    return new DerReader(this.expect(tag, field).content, this.code, field);
  }

  child(t: Tlv, field: string): DerReader {
    return new DerReader(t.content, this.code, field);
  }

  /** Every byte must have been consumed. */
  end(): void {
    if (!this.atEnd()) {
      const n = this.buf.length - this.pos;
      this.fail(this.field, `${n} unexpected trailing byte(s) after ${this.field}`);
    }
  }

  /** INTEGER content, checked minimal; returned as its two's-complement bytes. */
  integerBytes(field: string): Buffer {
    const c = this.expect(TAG_INTEGER, field).content;
    if (c.length === 0) this.fail(field, `${field} is an empty INTEGER`);
    if (c.length > 1 && ((c[0] === 0 && !(c[1]! & 0x80)) || (c[0] === 0xff && c[1]! & 0x80))) {
      this.fail(field, `${field} INTEGER is not minimally encoded`);
    }
    return c;
  }

  /** A small non-negative INTEGER. */
  smallInteger(field: string): number {
    const c = this.integerBytes(field);
    if (c[0]! & 0x80 || c.length > 6) this.fail(field, `${field} is out of range`);
    let v = 0;
    for (const x of c) v = v * 256 + x;
    return v;
  }

  oid(field: string): string {
    const c = this.expect(TAG_OID, field).content;
    const key = c.toString("latin1");
    let text = oidTexts.get(key);
    if (text === undefined) {
      text = decodeOid(c, (d) => this.fail(field, `${field}: ${d}`));
      if (oidTexts.size < OID_CACHE_MAX) oidTexts.set(key, text);
    }
    return text;
  }

  /** BIT STRING whose length is a whole number of octets; returns those octets. */
  octetAlignedBits(field: string): Buffer {
    const c = this.expect(TAG_BIT_STRING, field).content;
    if (c.length === 0) this.fail(field, `${field} is an empty BIT STRING`);
    if (c[0] !== 0) this.fail(field, `${field} has unused bits`);
    return c.subarray(1);
  }
}

export function decodeOid(c: Uint8Array, fail: (detail: string) => never): string {
  if (c.length === 0) fail("empty OBJECT IDENTIFIER");
  const subs: bigint[] = [];
  let v = 0n;
  let fresh = true;
  for (const byte of c) {
    if (fresh && byte === 0x80) fail("OBJECT IDENTIFIER is not minimally encoded");
    v = (v << 7n) | BigInt(byte & 0x7f);
    fresh = !(byte & 0x80);
    if (fresh) {
      subs.push(v);
      v = 0n;
    }
  }
  if (!fresh) fail("OBJECT IDENTIFIER is truncated");
  const first = subs[0]!;
  const head = first < 40n ? [0n, first] : first < 80n ? [1n, first - 40n] : [2n, first - 80n];
  return [...head, ...subs.slice(1)].join(".");
}
