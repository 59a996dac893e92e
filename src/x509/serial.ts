import type { Random } from "../runtime/clock.js";

/** Octets in every serial Mayfly issues. */
export const SERIAL_LENGTH = 16;

/**
 * A fresh serial: 16 octets from the injected Random with the top two bits forced to
 * 01. The 0 top bit keeps the INTEGER positive without a 0x00 pad and the 1 next to it
 * forbids a leading zero octet, so the DER INTEGER is always exactly 16 octets long
 * (which the leaf template relies on) and carries 126 random bits (DESIGN asks >= 64).
 * Uniqueness per issuer is the store's job, not this function's.
 */
export function newSerial(random: Random): Buffer {
  const b = random.bytes(SERIAL_LENGTH);
  if (b.length !== SERIAL_LENGTH) throw new RangeError("Random returned the wrong number of bytes");
  const out = Buffer.from(b);
  out[0] = (out[0]! & 0x3f) | 0x40;
  return out;
}

/** True for a value `newSerial` could have produced. */
export function isMayflySerial(serial: Uint8Array): boolean {
  return serial.length === SERIAL_LENGTH && (serial[0]! & 0xc0) === 0x40;
}
