import type { IssuanceFacts } from "./types.js";

/**
 * Freezes the facts StoreTx.getIssuanceFacts hands out: a backend may give the same
 * objects to later callers (the SQLite facts cache does). Buffers (a device's key bytes)
 * cannot be frozen; nothing on the issuance path writes into them.
 */
export function freezeFacts(f: IssuanceFacts): IssuanceFacts {
  if (f.owner) {
    if (f.owner.groups) Object.freeze(f.owner.groups);
    Object.freeze(f.owner);
  }
  Object.freeze(f.agent);
  if (f.device) Object.freeze(f.device);
  if (f.binding) Object.freeze(f.binding);
  return Object.freeze(f);
}
