import { describe, expect, it } from "vitest";
import { PooledRandom, systemRandom } from "../../src/runtime/clock.js";

// The pool is filled by a stand-in that writes a marker per position and fill: byte i of
// fill k is (k * size + i) mod 256, unique over the first 256 bytes the pool ever holds,
// so every handed-out byte says which fill and which position it came from.
function marked(size: number) {
  const fills: number[] = [];
  const random = new PooledRandom({
    size,
    fill: (pool) => {
      expect(pool.length).toBe(size);
      const k = fills.length;
      fills.push(k);
      for (let i = 0; i < size; i++) pool[i] = (k * size + i) % 256;
    },
  });
  return { random, fills };
}

describe("PooledRandom", () => {
  it("hands out each pool position at most once, in order, and refills when a draw does not fit", () => {
    const { random, fills } = marked(64);
    expect(fills).toHaveLength(0); // filled on the first draw, not before
    const sizes = [12, 16, 32, 16, 12, 16, 32, 0, 7, 25, 1];
    const seen = new Set<number>();
    const positions: { fill: number; at: number; n: number }[] = [];
    for (const n of sizes) {
      const out = random.bytes(n);
      expect(out.length).toBe(n);
      if (n === 0) continue;
      for (const b of out) {
        expect(seen.has(b), `byte ${b} handed out twice`).toBe(false);
        seen.add(b);
      }
      // Consecutive markers: one contiguous slice of one fill.
      for (let i = 1; i < n; i++) expect(out[i]).toBe(out[0]! + i);
      positions.push({ fill: Math.floor(out[0]! / 64), at: out[0]! % 64, n });
    }
    // 12+16+32 fit in fill 0; 16 does not (60 used): fill 1 from 0; and so on.
    expect(positions).toEqual([
      { fill: 0, at: 0, n: 12 },
      { fill: 0, at: 12, n: 16 },
      { fill: 0, at: 28, n: 32 },
      { fill: 1, at: 0, n: 16 },
      { fill: 1, at: 16, n: 12 },
      { fill: 1, at: 28, n: 16 },
      { fill: 2, at: 0, n: 32 },
      { fill: 2, at: 32, n: 7 },
      { fill: 2, at: 39, n: 25 },
      { fill: 3, at: 0, n: 1 },
    ]);
    expect(fills).toEqual([0, 1, 2, 3]);
  });

  it("hands out copies: neither a later refill nor the caller's writes reach another draw", () => {
    const { random } = marked(32);
    const a = random.bytes(16);
    const before = Buffer.from(a);
    a.fill(0xee);
    const b = random.bytes(16);
    expect([...b]).toEqual(Array.from({ length: 16 }, (_, i) => 16 + i));
    const c = random.bytes(16); // refills the pool under a and b
    expect([...c]).toEqual(Array.from({ length: 16 }, (_, i) => 32 + i));
    expect([...b]).toEqual(Array.from({ length: 16 }, (_, i) => 16 + i));
    expect(a.equals(Buffer.alloc(16, 0xee))).toBe(true);
    expect(before.equals(Buffer.from(Array.from({ length: 16 }, (_, i) => i)))).toBe(true);
    // Each draw owns its memory: no shared ArrayBuffer with the pool or another draw.
    for (const x of [a, b, c]) {
      expect(x.byteOffset).toBe(0);
      expect(x.buffer.byteLength).toBe(16);
    }
    expect(new Set([a.buffer, b.buffer, c.buffer]).size).toBe(3);
  });

  it("draws larger than the pool, and bad sizes, go to crypto.randomBytes", () => {
    const { random, fills } = marked(32);
    expect(random.bytes(33)).toHaveLength(33);
    expect(fills).toHaveLength(0);
    expect(() => random.bytes(-1)).toThrow(RangeError);
    expect(() => random.bytes("4" as unknown as number)).toThrow(TypeError);
    expect(() => random.bytes(Number.NaN)).toThrow(RangeError);
    expect(fills).toHaveLength(0);
  });

  it("systemRandom: many small draws across several refills, all distinct and full-length", () => {
    const seen = new Set<string>();
    // 4 KiB pool: 3,000 draws of 12-32 bytes refill it about 15 times.
    for (let i = 0; i < 3000; i++) {
      const n = [12, 16, 32][i % 3]!;
      const out = systemRandom.bytes(n);
      expect(out.length).toBe(n);
      const hex = out.toString("hex");
      expect(seen.has(hex)).toBe(false);
      seen.add(hex);
    }
    expect(systemRandom.bytes(10_000)).toHaveLength(10_000);
  });
});
