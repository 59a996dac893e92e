// Minimal DER writers for the hand encoder. Only what certificates need: every
// function returns a complete, canonical encoding (X.690 §10), so callers can
// concatenate pieces without re-checking them.

export const TAG_BOOLEAN = 0x01;
export const TAG_INTEGER = 0x02;
export const TAG_BIT_STRING = 0x03;
export const TAG_OCTET_STRING = 0x04;
export const TAG_NULL = 0x05;
export const TAG_OID = 0x06;
export const TAG_ENUMERATED = 0x0a;
export const TAG_UTF8_STRING = 0x0c;
export const TAG_UTC_TIME = 0x17;
export const TAG_GENERALIZED_TIME = 0x18;
export const TAG_SEQUENCE = 0x30;
export const TAG_SET = 0x31;

export const DER_NULL: Buffer = Buffer.from([TAG_NULL, 0x00]);
export const DER_TRUE: Buffer = Buffer.from([TAG_BOOLEAN, 0x01, 0xff]);

/** Definite-length octets (short form below 128, else the minimal long form). */
export function encodeLength(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`bad DER length ${n}`);
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** Length of the header (tag + length octets) for `contentLength` bytes of content. */
export function headerSize(contentLength: number): number {
  if (contentLength < 0x80) return 2;
  let n = 1;
  for (let v = contentLength; v > 0; v = Math.floor(v / 256)) n++;
  return n + 1;
}

/** One TLV from a single-octet tag and its content, possibly given in pieces. */
export function tlv(tag: number, content: Uint8Array | readonly Uint8Array[]): Buffer {
  const parts = content instanceof Uint8Array ? [content] : content;
  let len = 0;
  for (const p of parts) len += p.length;
  const out = Buffer.allocUnsafe(headerSize(len) + len);
  let o = writeHeader(out, 0, tag, len);
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Writes tag and length at `offset`; returns the offset of the content. */
export function writeHeader(out: Buffer, offset: number, tag: number, len: number): number {
  out[offset++] = tag;
  if (len < 0x80) {
    out[offset++] = len;
    return offset;
  }
  const size = headerSize(len) - 2;
  out[offset++] = 0x80 | size;
  for (let i = size - 1; i >= 0; i--) {
    out[offset + i] = len & 0xff;
    len = Math.floor(len / 256);
  }
  return offset + size;
}

export function sequence(...parts: Uint8Array[]): Buffer {
  return tlv(TAG_SEQUENCE, parts);
}

/** INTEGER from big-endian unsigned magnitude: leading zeros dropped, 0x00 added if needed. */
export function integerFromUnsigned(magnitude: Uint8Array): Buffer {
  let i = 0;
  while (i < magnitude.length - 1 && magnitude[i] === 0) i++;
  const body = magnitude.subarray(i);
  if (body.length === 0) return Buffer.from([TAG_INTEGER, 1, 0]);
  const pad = body[0]! & 0x80 ? 1 : 0;
  const content = Buffer.alloc(pad + body.length);
  content.set(body, pad);
  return tlv(TAG_INTEGER, content);
}

/** A small non-negative INTEGER (version numbers, path lengths). */
export function integerSmall(n: number): Buffer {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`bad small integer ${n}`);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return integerFromUnsigned(Uint8Array.from(bytes));
}

/** OBJECT IDENTIFIER TLV from dotted text; BigInt so that 2.25.<uuid> arcs fit. */
export function oid(dotted: string): Buffer {
  const arcs = dotted.split(".").map((a) => {
    if (!/^(0|[1-9][0-9]*)$/.test(a)) throw new RangeError(`bad OID ${dotted}`);
    return BigInt(a);
  });
  if (arcs.length < 2 || arcs[0]! > 2n || (arcs[0]! < 2n && arcs[1]! > 39n)) {
    throw new RangeError(`bad OID ${dotted}`);
  }
  const subs = [arcs[0]! * 40n + arcs[1]!, ...arcs.slice(2)];
  const bytes: number[] = [];
  for (const sub of subs) {
    const group: number[] = [Number(sub & 0x7fn)];
    for (let v = sub >> 7n; v > 0n; v >>= 7n) group.unshift(Number(v & 0x7fn) | 0x80);
    bytes.push(...group);
  }
  return tlv(TAG_OID, Uint8Array.from(bytes));
}

export function octetString(content: Uint8Array | readonly Uint8Array[]): Buffer {
  return tlv(TAG_OCTET_STRING, content);
}

/** BIT STRING of whole octets (no unused bits): keys, signatures. */
export function bitString(bytes: Uint8Array): Buffer {
  return tlv(TAG_BIT_STRING, [Uint8Array.of(0), bytes]);
}

export function utf8String(s: string): Buffer {
  return tlv(TAG_UTF8_STRING, Buffer.from(s, "utf8"));
}

/** Context-specific tag number `n` (< 31), constructed or primitive. */
export function contextTag(n: number, constructed: boolean): number {
  return 0x80 | (constructed ? 0x20 : 0) | n;
}

// RFC 5280 §4.1.2.5: UTCTime for 1950..2049, GeneralizedTime from 2050, always UTC
// ("Z"), always with seconds and never with fractional seconds.
const MIN_TIME_MS = -631152000000; // 1950-01-01T00:00:00Z
const MAX_TIME_MS = 253402300799000; // 9999-12-31T23:59:59Z
const GENERALIZED_FROM_MS = 2524608000000; // 2050-01-01T00:00:00Z

/** True when `ms` can be written as an X.509 Time. */
export function isEncodableTime(ms: number): boolean {
  return Number.isFinite(ms) && ms >= MIN_TIME_MS && ms < MAX_TIME_MS + 1000;
}

/**
 * Time CHOICE for an instant in epoch milliseconds. Milliseconds are dropped
 * (floored): X.509 cannot carry them, and flooring never extends a validity end.
 */
export function x509Time(ms: number): Buffer {
  if (!isEncodableTime(ms)) throw new RangeError(`time ${ms} outside 1950..9999`);
  const secs = Math.floor(ms / 1000);
  const days = Math.floor(secs / 86400);
  const sod = secs - days * 86400;
  const [y, m, d] = civilFromDays(days);
  const generalized = secs * 1000 >= GENERALIZED_FROM_MS;
  const out = Buffer.allocUnsafe(generalized ? 17 : 15);
  out[0] = generalized ? TAG_GENERALIZED_TIME : TAG_UTC_TIME;
  out[1] = generalized ? 15 : 13;
  let o = 2;
  if (generalized) o = put2(out, o, Math.floor(y / 100));
  o = put2(out, o, y % 100);
  o = put2(out, o, m);
  o = put2(out, o, d);
  o = put2(out, o, Math.floor(sod / 3600));
  o = put2(out, o, Math.floor((sod % 3600) / 60));
  o = put2(out, o, sod % 60);
  out[o] = 0x5a; // "Z"
  return out;
}

function put2(out: Buffer, o: number, v: number): number {
  out[o] = 0x30 + Math.floor(v / 10);
  out[o + 1] = 0x30 + (v % 10);
  return o + 2;
}

// Proleptic Gregorian date from days since 1970-01-01 (H. Hinnant's civil_from_days);
// done by hand because this module may not construct Date objects from the clock.
function civilFromDays(days: number): [number, number, number] {
  const z = days + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}
