import { randomBytes, randomFillSync } from "node:crypto";

/**
 * Time and randomness are injected below the server so that policy, evidence and
 * certificate code are deterministic under test. Only the composition root
 * (cli/, server/ start-up) constructs the system versions.
 */
export interface Clock {
  /** Milliseconds since the epoch. */
  now(): number;
}

export interface Random {
  bytes(n: number): Buffer;
}

export const systemClock: Clock = { now: () => Date.now() };

/**
 * Random bytes drawn from a pool that one randomFillSync refills: crypto.randomBytes costs
 * ~5-8 µs a call whatever the size (a native job per call), and an issuance makes two or
 * three small draws (nonce, serial). Each draw is copied out into a Buffer of its own (never
 * a view into the pool) and its bytes in the pool are zeroed and never handed out again; a
 * draw that does not fit in what is left refills the whole pool, so the tail is skipped,
 * not reused. The first fill happens on the first draw, in the process that draws.
 */
export class PooledRandom implements Random {
  readonly #pool: Buffer;
  readonly #fill: (pool: Buffer) => void;
  #at: number;

  constructor(opts: { size?: number; fill?: (pool: Buffer) => void } = {}) {
    this.#pool = Buffer.alloc(opts.size ?? 4096);
    this.#fill = opts.fill ?? ((pool) => randomFillSync(pool));
    this.#at = this.#pool.length;
  }

  bytes(n: number): Buffer {
    // Larger than the pool, or not a size at all: randomBytes as before (it refuses a bad n).
    if (!(n >= 0 && n <= this.#pool.length && Number.isInteger(n))) return randomBytes(n);
    if (this.#at + n > this.#pool.length) {
      this.#fill(this.#pool);
      this.#at = 0;
    }
    const out = Buffer.alloc(n);
    this.#pool.copy(out, 0, this.#at, this.#at + n);
    this.#pool.fill(0, this.#at, this.#at + n);
    this.#at += n;
    return out;
  }
}

export const systemRandom: Random = new PooledRandom();

/** A clock for tests and simulations; time moves only when told. */
export class ManualClock implements Clock {
  constructor(private t: number) {}
  now(): number {
    return this.t;
  }
  set(t: number): void {
    this.t = t;
  }
  advance(ms: number): void {
    this.t += ms;
  }
}
