import type { CaCertificate, CaJournalEntry } from "../store/types.js";
import type { RotationTiming } from "./rotation-timing.js";

// Pure decisions: given the CA certificates, the journal and the time, what is the next
// rotation step and when is the one after it due. No I/O here; rotation-intermediate.ts
// and rotation-root.ts read the view, ask, and carry a step out in one transaction.

export interface IntermediateNode extends CaCertificate {
  /** The id (SKI hex) of the root that signed it: its AuthorityKeyIdentifier. */
  issuerId: string;
}

export interface RotationView {
  /** Every root row, retired ones included. */
  roots: CaCertificate[];
  /** Every intermediate row, retired ones included. */
  intermediates: IntermediateNode[];
  journal: CaJournalEntry[];
  /** Latest notAfter of the leaves recorded under each intermediate not retired; null: none. */
  lastLeafNotAfter: Record<string, number | null>;
}

export const intermediateRotationId = (id: string) => `intermediate:${id}`;
export const rootRotationId = (id: string) => `root:${id}`;

export function journalStep(
  view: RotationView,
  rotationId: string,
  step: string,
): CaJournalEntry | undefined {
  return view.journal.find((e) => e.rotationId === rotationId && e.step === step);
}

export type IntermediateAction =
  | { kind: "prepare"; rootId: string; successorOf: string | null }
  | { kind: "canary"; id: string }
  | { kind: "activate"; id: string; replaces: string | null }
  | { kind: "retire"; id: string; reason: "drained" | "superseded" };

/** A step that is not due yet, and when it will be (null: it waits for something else). */
export interface Waiting {
  step: string;
  id: string | null;
  at: number | null;
  reason: string;
}

export interface IntermediatePlan {
  actions: IntermediateAction[];
  waiting: Waiting[];
}

/** When the intermediate `cur` started signing: its activation step, else its notBefore. */
export function activeSince(view: RotationView, cur: CaCertificate): number {
  return journalStep(view, intermediateRotationId(cur.id), "activated")?.at ?? cur.notBefore;
}

/** When the successor of `cur` takes over, and when it is prepared. */
export function intermediateSchedule(
  view: RotationView,
  cur: CaCertificate,
  t: RotationTiming,
): { prepareAt: number; activateAt: number; deadline: number } {
  const deadline = cur.notAfter - t.drain - t.propagation;
  const byPeriod = t.activeFor === null ? Number.POSITIVE_INFINITY : activeSince(view, cur) + t.activeFor;
  const activateAt = Math.min(deadline, byPeriod);
  return { prepareAt: activateAt - t.propagation, activateAt, deadline };
}

/** When a previous intermediate may leave the bundle: drained, and its last leaf expired everywhere. */
export function intermediateRetireAt(view: RotationView, p: CaCertificate, t: RotationTiming): number {
  const deactivatedAt = journalStep(view, intermediateRotationId(p.id), "deactivated")?.at ?? p.createdAt;
  const last = view.lastLeafNotAfter[p.id] ?? null;
  return Math.max(deactivatedAt + t.drain, last === null ? 0 : last + t.skew);
}

/**
 * Every intermediate step due at `now`, in the order to take them: retire drained
 * previous ones and next ones no root will use, canary next ones, then prepare or
 * activate the successor of the current intermediate under the current root.
 */
export function planIntermediates(view: RotationView, now: number, t: RotationTiming): IntermediatePlan {
  const actions: IntermediateAction[] = [];
  const waiting: Waiting[] = [];
  const rootSlot = new Map(view.roots.map((r) => [r.id, r.slot]));
  const live = view.intermediates.filter((i) => i.slot !== "retired");

  for (const p of live.filter((i) => i.slot === "previous")) {
    const at = intermediateRetireAt(view, p, t);
    if (now >= at) actions.push({ kind: "retire", id: p.id, reason: "drained" });
    else waiting.push({ step: "retire", id: p.id, at, reason: "its leaves have not all expired" });
  }
  for (const n of live.filter((i) => i.slot === "next")) {
    const s = rootSlot.get(n.issuerId);
    if (s !== "current" && s !== "next") {
      actions.push({ kind: "retire", id: n.id, reason: "superseded" });
    } else if (!journalStep(view, intermediateRotationId(n.id), "canaried")) {
      actions.push({ kind: "canary", id: n.id });
    }
  }

  const root = view.roots.find((r) => r.slot === "current");
  if (!root) return { actions, waiting };
  const cur = live.find((i) => i.slot === "current") ?? null;
  const next = live.find((i) => i.slot === "next" && i.issuerId === root.id) ?? null;
  const schedule = cur
    ? intermediateSchedule(view, cur, t)
    : { prepareAt: now, activateAt: now, deadline: now };
  if (!next) {
    if (now >= schedule.prepareAt)
      actions.push({ kind: "prepare", rootId: root.id, successorOf: cur?.id ?? null });
    else waiting.push({ step: "prepare", id: null, at: schedule.prepareAt, reason: "not due" });
    return { actions, waiting };
  }
  const published = journalStep(view, intermediateRotationId(next.id), "prepared")?.at ?? next.createdAt;
  const due = Math.max(schedule.activateAt, published + t.propagation);
  if (!journalStep(view, intermediateRotationId(next.id), "canaried")) {
    waiting.push({ step: "activate", id: next.id, at: null, reason: "the canary signature has not passed" });
  } else if (now >= due) {
    actions.push({ kind: "activate", id: next.id, replaces: cur?.id ?? null });
  } else {
    const reason = due === schedule.activateAt ? "not due" : "not yet published for the propagation period";
    waiting.push({ step: "activate", id: next.id, at: due, reason });
  }
  return { actions, waiting };
}

export type RootPhase = "steady" | "prepared" | "activated";

export interface RootRotationFacts {
  phase: RootPhase;
  /** The rotation in progress, or the last one when steady. */
  rotationId: string | null;
  from: string | null;
  to: string | null;
  intermediate: string | null;
  preparedAt: number | null;
  canaried: boolean;
  activateAllowedAt: number | null;
  activatedAt: number | null;
  forced: boolean;
  retireAllowedAt: number | null;
  retiredAt: number | null;
  /** Intermediates signed by the old root that are not retired, with their last leaf's notAfter. */
  oldIntermediates: { id: string; slot: string; lastLeafNotAfter: number | null }[];
}

/** Where the root ceremony stands, from the journal (the latest root rotation). */
export function rootRotationFacts(view: RotationView, t: RotationTiming): RootRotationFacts {
  const prepared = view.journal.filter((e) => e.kind === "root" && e.step === "prepared").at(-1);
  const none: RootRotationFacts = {
    phase: "steady",
    rotationId: null,
    from: null,
    to: null,
    intermediate: null,
    preparedAt: null,
    canaried: false,
    activateAllowedAt: null,
    activatedAt: null,
    forced: false,
    retireAllowedAt: null,
    retiredAt: null,
    oldIntermediates: [],
  };
  if (!prepared) return none;
  const id = prepared.rotationId;
  const from = String(prepared.data.from);
  const to = id.slice("root:".length);
  const intermediate = typeof prepared.data.intermediate === "string" ? prepared.data.intermediate : null;
  const activated = journalStep(view, id, "activated");
  const retired = journalStep(view, id, "retired");
  const oldIntermediates = view.intermediates
    .filter((i) => i.issuerId === from && i.slot !== "retired")
    .map((i) => ({ id: i.id, slot: i.slot, lastLeafNotAfter: view.lastLeafNotAfter[i.id] ?? null }));
  let retireAllowedAt: number | null = null;
  if (activated) {
    const lastLeaf = Math.max(0, ...oldIntermediates.map((i) => i.lastLeafNotAfter ?? 0));
    retireAllowedAt = Math.max(activated.at + t.drain, lastLeaf === 0 ? 0 : lastLeaf + t.skew);
  }
  return {
    phase: retired ? "steady" : activated ? "activated" : "prepared",
    rotationId: id,
    from,
    to,
    intermediate,
    preparedAt: prepared.at,
    canaried: intermediate !== null && !!journalStep(view, intermediateRotationId(intermediate), "canaried"),
    activateAllowedAt: prepared.at + t.propagation,
    activatedAt: activated?.at ?? null,
    forced: activated?.data.forced === true,
    retireAllowedAt,
    retiredAt: retired?.at ?? null,
    oldIntermediates,
  };
}
