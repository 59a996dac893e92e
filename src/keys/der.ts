/**
 * Just enough DER to write and strictly read PKCS#8 EncryptedPrivateKeyInfo; the
 * project's ASN.1 libraries are for certificates and a parse failure here must
 * surface as a key error that names the field, never a library exception.
 */
export const TAG = { INTEGER: 0x02, OCTET_STRING: 0x04, NULL: 0x05, OID: 0x06, SEQUENCE: 0x30 } as const;

export function tlv(tag: number, content: Uint8Array): Buffer {
  const n = content.length;
  let len: number[];
  if (n < 0x80) len = [n];
  else {
    const bytes: number[] = [];
    for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
    len = [0x80 | bytes.length, ...bytes];
  }
  return Buffer.concat([Buffer.from([tag, ...len]), content]);
}

export const seq = (...parts: Uint8Array[]): Buffer => tlv(TAG.SEQUENCE, Buffer.concat(parts));

export function uint(v: number): Buffer {
  const bytes: number[] = [];
  for (let x = v; x > 0; x = Math.floor(x / 256)) bytes.unshift(x & 0xff);
  if (bytes.length === 0 || (bytes[0]! & 0x80) !== 0) bytes.unshift(0);
  return tlv(TAG.INTEGER, Buffer.from(bytes));
}

export class DerError extends Error {
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(message);
  }
}

/** Reads consecutive TLVs from `buf`; every length is checked against what remains. */
export class DerReader {
  private pos = 0;
  constructor(
    private readonly buf: Buffer,
    private readonly path: string,
  ) {}

  get done(): boolean {
    return this.pos === this.buf.length;
  }

  peekTag(): number | undefined {
    return this.buf[this.pos];
  }

  read(tag: number, name: string): Buffer {
    const field = this.at(name);
    const b = this.buf;
    if (b[this.pos] !== tag) throw new DerError(field, `expected tag 0x${tag.toString(16)}`);
    let p = this.pos + 1;
    const first = b[p++];
    if (first === undefined) throw new DerError(field, "truncated length");
    let len = first;
    if (first & 0x80) {
      const k = first & 0x7f;
      if (k === 0 || k > 4 || p + k > b.length) throw new DerError(field, "bad length");
      len = 0;
      for (let i = 0; i < k; i++) len = len * 256 + b[p++]!;
      if (len < 0x80 || b[p - k] === 0) throw new DerError(field, "non-minimal length");
    }
    if (p + len > b.length) throw new DerError(field, "truncated value");
    this.pos = p + len;
    return b.subarray(p, p + len);
  }

  sub(tag: number, name: string): DerReader {
    return new DerReader(this.read(tag, name), this.at(name));
  }

  /** A positive INTEGER that fits in 32 bits, minimally encoded. */
  uint(name: string): number {
    const v = this.read(TAG.INTEGER, name);
    const field = this.at(name);
    if (v.length === 0 || v.length > 5 || (v[0]! & 0x80) !== 0)
      throw new DerError(field, "not a small positive integer");
    if (v.length > 1 && v[0] === 0 && (v[1]! & 0x80) === 0) throw new DerError(field, "non-minimal integer");
    const n = v.readUIntBE(0, v.length);
    if (n > 0xffffffff) throw new DerError(field, "integer too large");
    return n;
  }

  at(name: string): string {
    return this.path === "" ? name : `${this.path}.${name}`;
  }

  end(): void {
    if (!this.done) throw new DerError(this.path || "(top)", "trailing bytes");
  }
}
