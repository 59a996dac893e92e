import { randomBytes } from "node:crypto";

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
export const systemRandom: Random = { bytes: (n) => randomBytes(n) };

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
