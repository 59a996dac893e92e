import { describe, expect, it } from "vitest";
import { encodeLength, integerFromUnsigned, oid, x509Time } from "../../src/x509/der.js";
import { isMayflySerial, newSerial, OID_MAYFLY_ASSURANCE } from "../../src/x509/index.js";

const hex = (b: Buffer) => b.toString("hex");
const ascii = (b: Buffer) => b.subarray(2).toString("latin1");

describe("DER helpers", () => {
  it("writes minimal lengths", () => {
    expect(hex(encodeLength(0))).toBe("00");
    expect(hex(encodeLength(127))).toBe("7f");
    expect(hex(encodeLength(128))).toBe("8180");
    expect(hex(encodeLength(255))).toBe("81ff");
    expect(hex(encodeLength(256))).toBe("820100");
    expect(hex(encodeLength(65536))).toBe("83010000");
  });

  it("writes positive minimal INTEGERs from unsigned bytes", () => {
    expect(hex(integerFromUnsigned(Buffer.from([0, 0, 1])))).toBe("020101");
    expect(hex(integerFromUnsigned(Buffer.from([0x80])))).toBe("02020080");
    expect(hex(integerFromUnsigned(Buffer.from([0, 0])))).toBe("020100");
  });

  it("encodes the 128-bit UUID arc", () => {
    expect(hex(oid("2.5.29.17"))).toBe("0603551d11");
    expect(hex(oid(OID_MAYFLY_ASSURANCE))).toBe("06146983b7d3cabcd98e9aa39b9cecd9e6b7fefeab06");
    expect(() => oid("3.1")).toThrow();
    expect(() => oid("1.40")).toThrow();
    expect(() => oid("1.2.03")).toThrow();
  });

  it("switches from UTCTime to GeneralizedTime at 2050 (RFC 5280 §4.1.2.5) and drops milliseconds", () => {
    expect(ascii(x509Time(Date.UTC(1950, 0, 1)))).toBe("500101000000Z");
    expect(x509Time(Date.UTC(1950, 0, 1))[0]).toBe(0x17);
    expect(ascii(x509Time(Date.UTC(1969, 11, 31, 23, 59, 59, 999)))).toBe("691231235959Z");
    expect(ascii(x509Time(Date.UTC(2049, 11, 31, 23, 59, 59, 999)))).toBe("491231235959Z");
    expect(x509Time(Date.UTC(2049, 11, 31, 23, 59, 59, 999))[0]).toBe(0x17);
    expect(ascii(x509Time(Date.UTC(2050, 0, 1)))).toBe("20500101000000Z");
    expect(x509Time(Date.UTC(2050, 0, 1))[0]).toBe(0x18);
    expect(ascii(x509Time(Date.UTC(2000, 1, 29, 13, 7, 9)))).toBe("000229130709Z");
    expect(ascii(x509Time(Date.UTC(9999, 11, 31, 23, 59, 59, 999)))).toBe("99991231235959Z");
    expect(() => x509Time(Date.UTC(1949, 11, 31, 23, 59, 59))).toThrow();
    expect(() => x509Time(Date.UTC(10000, 0, 1))).toThrow();
  });

  it("agrees with Date on every day of four centuries", () => {
    for (let ms = Date.UTC(1950, 0, 1, 1, 2, 3); ms < Date.UTC(2350, 0, 1); ms += 86_400_000) {
      const iso = new Date(ms).toISOString();
      const want = `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
      const got = ascii(x509Time(ms));
      // UTCTime's two-digit year: 50..99 is 19xx, 00..49 is 20xx.
      const full = got.length === 13 ? (Number(got.slice(0, 2)) >= 50 ? "19" : "20") + got : got;
      expect(full).toBe(want);
    }
  });
});

describe("serials", () => {
  it("are 16 octets with the top bits 01, whatever the random source returns", () => {
    for (const fill of [0x00, 0xff, 0x80, 0x3f]) {
      const s = newSerial({ bytes: (n) => Buffer.alloc(n, fill) });
      expect(s.length).toBe(16);
      expect(s[0]! >> 6).toBe(1);
      expect(isMayflySerial(s)).toBe(true);
      expect(integerFromUnsigned(s).length).toBe(18); // tag, length, 16 octets: no pad, no trim
    }
  });

  it("keep 126 random bits and do not alias the random buffer", () => {
    const src = Buffer.alloc(16, 0xaa);
    const s = newSerial({ bytes: () => src });
    expect(s.subarray(1).equals(src.subarray(1))).toBe(true);
    expect(s[0]).toBe((0xaa & 0x3f) | 0x40);
    expect(src[0]).toBe(0xaa);
    expect(() => newSerial({ bytes: () => Buffer.alloc(8) })).toThrow();
  });
});
