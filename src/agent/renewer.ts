import { X509Certificate } from "node:crypto";
import type { Clock, Random } from "../runtime/clock.js";
import type { AgentLog } from "./ak.js";
import { classifyFailure, DENIAL_EXPLANATION, type DenialKind } from "./denials.js";
import type { Issued } from "./issuer.js";

// The renewal loop: issue, hand the result over (files, a TLS context), sleep until about half
// of the certificate's remaining life has passed (minus jitter, so a fleet started together
// spreads out), and again. Transient failures back off exponentially up to a cap; a terminal
// denial ends the loop with its code. Time and randomness are injected: the loop itself never
// reads the wall clock or makes up its own randomness, and a test can drive it with a manual clock.

/** Waits `ms`, or less when `signal` aborts (then it resolves, it does not reject). */
export type Sleep = (ms: number, signal: AbortSignal) => Promise<void>;

export interface RenewerOptions {
  /** One complete issuance: challenge, key, evidence, CSR, certificate. */
  readonly issue: () => Promise<Issued>;
  /** Called with every new certificate before the next sleep; a throw counts as a transient failure. */
  readonly onIssued: (issued: Issued) => Promise<void>;
  readonly clock: Clock;
  readonly random: Random;
  readonly sleep: Sleep;
  readonly log?: AgentLog;
  /** Renew when this fraction of the remaining lifetime has passed; default 0.5. */
  readonly renewAt?: number;
  /** Up to this fraction earlier, at random; default 0.1. */
  readonly jitter?: number;
  /** First retry delay; default 1 s. Doubles per consecutive failure. */
  readonly backoffInitialMs?: number;
  /** Longest retry delay; default 60 s. */
  readonly backoffMaxMs?: number;
  /** Never sleep less than this between issuances; default 1 s. */
  readonly minDelayMs?: number;
  /** Stop after this many certificates (e.g. 1 for `--once`); default unlimited. */
  readonly maxIssuances?: number;
  /** Told about each transient failure (after it is logged), with the wait before the retry. */
  readonly onFailure?: (error: unknown, code: string, failures: number, retryInMs: number) => void;
}

export type RenewerResult =
  | { readonly reason: "stopped"; readonly issued: number }
  | { readonly reason: "done"; readonly issued: number }
  | {
      readonly reason: "denied";
      readonly issued: number;
      readonly code: string;
      readonly kind: DenialKind;
      readonly detail: string;
      readonly error: unknown;
    };

export function describeDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 100) / 10);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  const rest = Math.round(s - m * 60);
  return rest === 0 ? `${m} min` : `${m} min ${rest} s`;
}

function detailOf(e: unknown): string {
  if (e && typeof e === "object" && "detail" in e && typeof e.detail === "string") return e.detail;
  return e instanceof Error ? e.message : String(e);
}

export class Renewer {
  readonly #o: RenewerOptions;
  #wake: AbortController | null = null;
  #stopped = false;
  #current: Issued | null = null;

  constructor(o: RenewerOptions) {
    const renewAt = o.renewAt ?? 0.5;
    const jitter = o.jitter ?? 0.1;
    if (!(renewAt > 0 && renewAt < 1)) throw new RangeError("renewAt is a fraction between 0 and 1");
    if (!(jitter >= 0 && jitter < 1)) throw new RangeError("jitter is a fraction in [0, 1)");
    this.#o = o;
  }

  /** The newest certificate, once there is one. */
  get current(): Issued | null {
    return this.#current;
  }

  /** Cuts the current wait short: renew (or retry) now. */
  renewNow(): void {
    this.#wake?.abort();
  }

  /** Ends the loop after the step in progress; run() then resolves with "stopped". */
  stop(): void {
    this.#stopped = true;
    this.#wake?.abort();
  }

  /** A number in [0, 1) from the injected randomness. */
  #uniform(): number {
    return this.#o.random.bytes(4).readUInt32BE(0) / 2 ** 32;
  }

  /** How long to wait before renewing a certificate that expires at `notAfter`. */
  renewDelay(notAfter: number): number {
    const remaining = notAfter - this.#o.clock.now();
    const fraction = (this.#o.renewAt ?? 0.5) * (1 - (this.#o.jitter ?? 0.1) * this.#uniform());
    return Math.max(this.#o.minDelayMs ?? 1000, Math.floor(remaining * fraction));
  }

  /** The wait after `failures` consecutive transient failures. */
  backoffDelay(failures: number): number {
    const initial = this.#o.backoffInitialMs ?? 1000;
    const cap = this.#o.backoffMaxMs ?? 60_000;
    const base = Math.min(cap, initial * 2 ** Math.min(failures - 1, 30));
    // Full jitter in the upper half: retries from many agents do not line up.
    return Math.floor(base * (0.5 + 0.5 * this.#uniform()));
  }

  async #pause(ms: number): Promise<void> {
    const wake = new AbortController();
    this.#wake = wake;
    if (this.#stopped) wake.abort();
    await this.#o.sleep(ms, wake.signal);
    this.#wake = null;
  }

  async run(): Promise<RenewerResult> {
    const { log, clock } = this.#o;
    let failures = 0;
    let issued = 0;
    while (!this.#stopped) {
      let delay: number;
      try {
        const cert = await this.#o.issue();
        await this.#o.onIssued(cert);
        this.#current = cert;
        issued++;
        failures = 0;
        const notAfter = Date.parse(cert.notAfter);
        delay = this.renewDelay(notAfter);
        const serial = new X509Certificate(cert.certificate).serialNumber.toLowerCase();
        log?.(
          "info",
          `certificate ${serial} (${cert.keyResidency} key) valid until ${cert.notAfter}; ` +
            `next renewal in ${describeDuration(delay)}`,
        );
        if (this.#o.maxIssuances !== undefined && issued >= this.#o.maxIssuances) {
          return { reason: "done", issued };
        }
      } catch (e) {
        const f = classifyFailure(e);
        if (f.terminal) {
          const detail = detailOf(e);
          log?.("error", `renewal denied: ${f.code}: ${detail} (${DENIAL_EXPLANATION[f.kind]}); stopping`);
          return { reason: "denied", issued, code: f.code, kind: f.kind, detail, error: e };
        }
        failures++;
        delay = this.backoffDelay(failures);
        const left = this.#current ? Date.parse(this.#current.notAfter) - clock.now() : null;
        const validity =
          left === null
            ? "no certificate yet"
            : left > 0
              ? `current certificate valid for ${describeDuration(left)}`
              : "the current certificate has EXPIRED";
        log?.(
          "warn",
          `renewal failed (${f.code}: ${detailOf(e)}); retry ${failures} in ${describeDuration(delay)}; ${validity}`,
        );
        this.#o.onFailure?.(e, f.code, failures, delay);
      }
      await this.#pause(delay);
    }
    return { reason: "stopped", issued };
  }
}
