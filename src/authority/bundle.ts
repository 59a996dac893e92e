import type { CaState } from "./ca-state.js";
import { fingerprint, toPem } from "./ca-state.js";

export interface BundleEntry {
  id: string;
  slot: string;
  pem: string;
  fingerprint: string;
  notBefore: string;
  notAfter: string;
}

export interface Bundle {
  trustDomain: string;
  roots: BundleEntry[];
  intermediates: BundleEntry[];
  rotation: { state: "steady" | "rotating" };
}

/** The trust bundle: what relying parties and agents need to verify Mayfly leaves. */
export function buildBundle(state: CaState, trustDomain: string): Bundle {
  const entry = (r: CaState["roots"][number]): BundleEntry => ({
    id: r.id,
    slot: r.slot,
    pem: toPem(r.der),
    fingerprint: fingerprint(r.der),
    notBefore: new Date(r.notBefore).toISOString(),
    notAfter: new Date(r.notAfter).toISOString(),
  });
  const roots = state.roots.map(entry);
  const intermediates = state.intermediates.map(entry);
  const rotating = [...state.roots, ...state.intermediates].some((r) => r.slot !== "current");
  return { trustDomain, roots, intermediates, rotation: { state: rotating ? "rotating" : "steady" } };
}

/** PEM text: roots first, then intermediates. */
export function bundlePem(b: Bundle): string {
  return [...b.roots, ...b.intermediates].map((e) => e.pem).join("");
}
