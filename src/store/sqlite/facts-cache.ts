import type { IssuanceFacts } from "../types.js";

/** The statement that reads the value the cache is checked against (migration 0010). */
export const FACTS_VERSION_SQL = "SELECT v FROM facts_version WHERE id = 1";

/**
 * The issuance facts (agent, owner, device, binding) of recently seen agents, each kept
 * with the facts_version value it was read under. Migration 0010's triggers give that
 * value a fresh random one in the same transaction as any change to owners, devices,
 * bindings or agents (but agents.last_issued_at), so while the database still holds the
 * value an entry was read under, the rows are the ones it was read from: an issuance
 * then reads one row instead of four, twice (before deciding and again inside the
 * recording transaction), and decides on exactly what it would have read.
 *
 * One per store (process); the writer's and the read-only connection's transactions share
 * it, which is sound because the value names the data, whichever connection read it. An
 * entry read inside a transaction that changed facts carries that transaction's
 * uncommitted value: if it commits, the entry is right; if it rolls back, no later change
 * draws the same 128 random bits, so the entry is never served. Unknown agents are not
 * kept (a caller choosing ids must not be able to push real entries out).
 * Bounded; the least recently used entry goes first.
 */
export class FactsCache {
  readonly #entries = new Map<string, { version: string; facts: IssuanceFacts }>();

  constructor(readonly capacity = 16_384) {
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError("FactsCache capacity must be >= 1");
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The facts read under `version`, or undefined if there are none for it. */
  get(agentId: string, version: string): IssuanceFacts | undefined {
    const e = this.#entries.get(agentId);
    if (!e) return undefined;
    if (e.version !== version) {
      this.#entries.delete(agentId);
      return undefined;
    }
    // Most recently used last, so eviction takes the first key.
    this.#entries.delete(agentId);
    this.#entries.set(agentId, e);
    return e.facts;
  }

  set(agentId: string, version: string, facts: IssuanceFacts): void {
    this.#entries.delete(agentId);
    this.#entries.set(agentId, { version, facts });
    if (this.#entries.size > this.capacity) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
  }

  clear(): void {
    this.#entries.clear();
  }
}
