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

/** A cross certificate of a root rotation: the key of root `subjectId` certified by root `issuerId`. */
export interface CrossSignedEntry {
  subjectId: string;
  issuerId: string;
  pem: string;
  fingerprint: string;
}

/**
 * One detached JWS (RFC 7515 flattened JSON, payload omitted, Appendix F) by a root over
 * the bundle's canonical encoding: every member but `signatures`, in RFC 8785 canonical
 * JSON. `protected` is base64url of {"alg","kid","typ","x5t#S256"}. See README "Rotation".
 */
export interface BundleSignature {
  protected: string;
  signature: string;
}

export interface Bundle {
  trustDomain: string;
  /** Increases with every rotation step; a relying party refuses a lower one than it holds. */
  sequence: number;
  /** When this bundle was signed (ISO 8601). */
  issuedAt: string;
  roots: BundleEntry[];
  intermediates: BundleEntry[];
  crossSigned: CrossSignedEntry[];
  rotation: { state: "steady" | "rotating" };
  signatures: BundleSignature[];
}

/** The bundle's members without signatures, as signed. */
export type BundleContent = Omit<Bundle, "signatures">;

/** What the roots sign: the state's CA certificates, sequence and cross certificates. */
export function bundleContent(state: CaState, trustDomain: string, issuedAt: number): BundleContent {
  const entry = (r: CaState["roots"][number]): BundleEntry => ({
    id: r.id,
    slot: r.slot,
    pem: toPem(r.der),
    fingerprint: fingerprint(r.der),
    notBefore: new Date(r.notBefore).toISOString(),
    notAfter: new Date(r.notAfter).toISOString(),
  });
  // Oldest first: previous, current, next (then by creation), the same on every replica.
  const rank = { previous: 0, current: 1, next: 2, retired: 3 } as const;
  const ordered = (rows: CaState["roots"]) =>
    [...rows].sort(
      (a, b) => rank[a.slot] - rank[b.slot] || a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1),
    );
  const roots = ordered(state.roots).map(entry);
  const intermediates = ordered(state.intermediates).map(entry);
  const crossSigned = state.crossSigned.map((c) => ({
    subjectId: c.subjectId,
    issuerId: c.issuerId,
    pem: toPem(c.der),
    fingerprint: fingerprint(c.der),
  }));
  const rotating = [...state.roots, ...state.intermediates].some((r) => r.slot !== "current");
  return {
    trustDomain,
    sequence: state.sequence,
    issuedAt: new Date(issuedAt).toISOString(),
    roots,
    intermediates,
    crossSigned,
    rotation: { state: rotating ? "rotating" : "steady" },
  };
}

/**
 * The trust bundle: what relying parties and agents need to verify Mayfly leaves, signed
 * by the roots (rotation-bundle.ts) when the state was loaded. A state not yet signed (or
 * another trust domain) gives the same content with no signatures.
 */
export function buildBundle(state: CaState, trustDomain: string): Bundle {
  if (state.bundle && state.bundle.trustDomain === trustDomain) return state.bundle;
  const issuedAt = state.bundle ? Date.parse(state.bundle.issuedAt) : 0;
  return { ...bundleContent(state, trustDomain, issuedAt), signatures: [] };
}

/** PEM text: roots first, then intermediates. */
export function bundlePem(b: Bundle): string {
  return [...b.roots, ...b.intermediates].map((e) => e.pem).join("");
}
