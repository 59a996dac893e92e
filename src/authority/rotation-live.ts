import type { Config } from "../config/schema.js";
import type { KeyStore } from "../keys/keystore.js";
import type { Clock, Random } from "../runtime/clock.js";
import type { Store } from "../store/store.js";
import { type CaState, caStateFromRows } from "./ca-state.js";
import { signState } from "./rotation-bundle.js";
import { rotationTick, type TickResult } from "./rotation-intermediate.js";
import { checkRotationTiming, rotationTiming } from "./rotation-timing.js";

export interface LiveCaLog {
  info(o: object, msg: string): void;
  warn(o: object, msg: string): void;
}

/**
 * The CA state a server serves from, kept in step with the store: every
 * rotation.checkInterval each replica runs the rotation tick (when rotation.auto) and
 * re-reads the CA certificates and journal; when they changed, it builds the new state
 * (issuer, signed bundle) and swaps it in whole, so a request sees the old or the new
 * state, never a mix, and every replica converges on the store without a restart.
 */
export class LiveCa {
  #state: CaState;
  #key: string;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<unknown> = Promise.resolve();

  private constructor(
    state: CaState,
    private readonly deps: {
      store: Store;
      keys: KeyStore;
      clock: Clock;
      random: Random;
      config: Config;
      log: LiveCaLog;
      onChange: (next: CaState, previous: CaState) => Promise<void> | void;
    },
  ) {
    this.#state = state;
    this.#key = keyOf(state);
  }

  /** Signs the initial state's bundle; refuses a rotation schedule that cannot settle. */
  static async start(initial: CaState, deps: LiveCa["deps"]): Promise<LiveCa> {
    if (deps.config.rotation.auto) checkRotationTiming(rotationTiming(deps.config));
    const signed = await signState(initial, {
      keys: deps.keys,
      trustDomain: deps.config.ca.trustDomain,
      now: deps.clock.now(),
    });
    return new LiveCa(signed, deps);
  }

  state(): CaState {
    return this.#state;
  }

  /** Re-reads the store; true when the state changed and was swapped. */
  refresh(): Promise<boolean> {
    const run = this.#running.then(() => this.#refresh());
    this.#running = run.catch(() => undefined);
    return run;
  }

  /** One rotation tick (whatever rotation.auto says), then a refresh. */
  tick(actor = "system"): Promise<TickResult> {
    const d = this.deps;
    const run = this.#running.then(async () => {
      const r = await rotationTick({ ...d, actor });
      await this.#refresh();
      return r;
    });
    this.#running = run.catch(() => undefined);
    return run;
  }

  /** The timer: tick (when rotation.auto) and refresh every rotation.checkInterval. */
  startTimer(): void {
    const d = this.deps;
    this.#timer = setInterval(() => {
      const work = d.config.rotation.auto ? this.tick() : this.refresh();
      work
        .then((r) => {
          if (typeof r === "object" && r.done.length > 0)
            d.log.info({ rotation: r.done }, "CA rotation steps taken");
        })
        .catch((err) => d.log.warn({ err }, "CA rotation tick failed; retrying at the next interval"));
    }, d.config.rotation.checkInterval);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  async #refresh(): Promise<boolean> {
    const d = this.deps;
    const [rows, journal] = await d.store.tx(
      async (tx) => [await tx.listCaCertificates(), await tx.listCaJournal()] as const,
    );
    const previous = this.#state;
    const fresh = await caStateFromRows(rows, journal, {
      keys: d.keys,
      config: d.config,
      reuse: previous.issuer,
    });
    if (keyOf(fresh) === this.#key) return false;
    const next = await signState(fresh, {
      keys: d.keys,
      trustDomain: d.config.ca.trustDomain,
      now: d.clock.now(),
    });
    this.#state = next;
    this.#key = keyOf(next);
    d.log.info(
      {
        sequence: next.sequence,
        issuer: next.issuer.record.id,
        roots: next.roots.map((r) => `${r.id}:${r.slot}`),
      },
      "CA state changed",
    );
    await d.onChange(next, previous);
    return true;
  }
}

/** What identifies a state: its sequence and every CA certificate's slot. */
function keyOf(s: CaState): string {
  return [s.sequence, ...[...s.roots, ...s.intermediates].map((r) => `${r.id}:${r.slot}`)].join(",");
}
