import { isMayflyError, MayflyError } from "../errors/index.js";
import { buildIntermediate, newSerial } from "../x509/index.js";
import { fingerprint } from "./ca-state.js";
import { markRecorded } from "./deny.js";
import {
  type IntermediateAction,
  intermediateRotationId,
  journalStep,
  planIntermediates,
  type RotationView,
  type Waiting,
} from "./rotation-plan.js";
import {
  audit,
  casSlot,
  iso,
  journal,
  loadView,
  newLabel,
  type RotationDeps,
  specFor,
  step,
} from "./rotation-store.js";
import { rotationTiming } from "./rotation-timing.js";
import { canarySign } from "./rotation-x509.js";

// Intermediate auto-rotation: the tick reads the view, asks planIntermediates what is
// due, and takes each step in one transaction, journaled with the slot changes it makes.
// A crash between steps leaves slots and journal agreeing on how far it got; the next
// tick (on any replica) plans from there. Two replicas ticking at once both plan the same
// step; the journal's unique (rotation, step) and the slot compare-and-set let one win
// and make the other's attempt change nothing.

export interface TickResult {
  done: { step: IntermediateAction["kind"]; id: string | null; at: string }[];
  waiting: { step: string; id: string | null; at: string | null; reason: string }[];
}

const MAX_STEPS = 16;

export async function rotationTick(deps: RotationDeps): Promise<TickResult> {
  const t = rotationTiming(deps.config);
  const done: TickResult["done"] = [];
  let waiting: Waiting[] = [];
  let conflicts = 0;
  for (let n = 0; n < MAX_STEPS; n++) {
    const view = await loadView(deps.store);
    const plan = planIntermediates(view, deps.clock.now(), t);
    waiting = plan.waiting;
    const action = plan.actions[0];
    if (!action) break;
    try {
      const id = await takeStep(deps, view, action);
      done.push({ step: action.kind, id, at: iso(deps.clock.now())! });
    } catch (err) {
      // Another replica took the step between our read and our write: plan again.
      if (isMayflyError(err) && err.code === "store.conflict" && ++conflicts < 3) continue;
      throw err;
    }
  }
  return { done, waiting: waiting.map((w) => ({ ...w, at: iso(w.at) })) };
}

async function takeStep(
  deps: RotationDeps,
  view: RotationView,
  a: IntermediateAction,
): Promise<string | null> {
  switch (a.kind) {
    case "prepare":
      return prepareIntermediate(deps, view, a.rootId, a.successorOf);
    case "canary":
      await canaryIntermediate(deps, view, a.id);
      return a.id;
    case "activate":
      await activateIntermediate(deps, a.id, a.replaces);
      return a.id;
    case "retire":
      await retireIntermediate(deps, a.id, a.reason);
      return a.id;
  }
}

/** A new key in the key store and a certificate from `rootId`, published in slot next. */
export async function prepareIntermediate(
  deps: RotationDeps,
  view: RotationView,
  rootId: string,
  successorOf: string | null,
): Promise<string> {
  const { config, clock, random, keys } = deps;
  const t = rotationTiming(config);
  const root = view.roots.find((r) => r.id === rootId);
  if (!root) throw new MayflyError("internal.error", `no root ${rootId}`);
  const now = clock.now();
  const rootSigner = await keys.load(root.keyLabel);
  const signer = await keys.generate(newLabel("intermediate", now, random), specFor(config));
  const cert = await buildIntermediate({
    issuerCertificate: root.der,
    issuerSigner: rootSigner,
    subjectPublicKey: signer.spki,
    serial: newSerial(random),
    subject: config.ca.intermediate,
    notBefore: now - t.skew,
    notAfter: Math.min(now + config.ca.intermediateLifetime, root.notAfter),
  });
  const id = cert.ski.toString("hex");
  await step(deps, "intermediate.prepare", async (tx, at) => {
    // The claim: one successor per current intermediate (per root when there is none).
    const claimed = successorOf
      ? await journal(tx, at, "intermediate", intermediateRotationId(successorOf), "successor-prepared", {
          successor: id,
        })
      : await journal(tx, at, "root", `root:${rootId}`, "intermediate-prepared", { intermediate: id });
    if (!claimed) return false;
    await tx.insertCaCertificate({
      id,
      role: "intermediate",
      slot: "next",
      keyLabel: signer.label,
      der: cert.der,
      notBefore: cert.notBefore,
      notAfter: cert.notAfter,
      createdAt: at,
    });
    const data = {
      issuer: rootId,
      keyLabel: signer.label,
      fingerprint: fingerprint(cert.der),
      notBefore: iso(cert.notBefore),
      notAfter: iso(cert.notAfter),
      successorOf,
    };
    await journal(tx, at, "intermediate", intermediateRotationId(id), "prepared", data);
    await audit(tx, deps, { type: "ca.intermediate.prepare", subject: `ca:${id}`, data });
    return true;
  });
  return id;
}

/** Loads the next intermediate's key as any replica would, signs a canary leaf, verifies the chain. */
export async function canaryIntermediate(deps: RotationDeps, view: RotationView, id: string): Promise<void> {
  const next = view.intermediates.find((i) => i.id === id);
  const root = view.roots.find((r) => r.id === next?.issuerId);
  if (!next || !root) throw new MayflyError("internal.error", `no intermediate ${id} with its root`);
  if (journalStep(view, intermediateRotationId(id), "canaried")) return;
  let result: { fingerprint: string };
  try {
    const signer = await deps.keys.load(next.keyLabel);
    result = await canarySign({
      intermediate: next.der,
      signer,
      root: root.der,
      config: deps.config,
      random: deps.random,
      now: deps.clock.now(),
    });
  } catch (err) {
    const e =
      isMayflyError(err) && err.code === "rotation.canary_failed"
        ? err
        : new MayflyError(
            "rotation.canary_failed",
            `the canary of ${id} failed: ${err instanceof Error ? err.message : String(err)}`,
            { cause: err },
          );
    await deps.store.tx((tx) =>
      audit(tx, deps, {
        type: "ca.intermediate.canary",
        decision: "deny",
        code: e.code,
        subject: `ca:${id}`,
        data: { detail: e.detail },
      }),
    );
    throw markRecorded(e);
  }
  await step(deps, "intermediate.canary", async (tx, at) => {
    const data = { canaryFingerprint: result.fingerprint, root: root.id };
    if (!(await journal(tx, at, "intermediate", intermediateRotationId(id), "canaried", data))) return false;
    await audit(tx, deps, { type: "ca.intermediate.canary", decision: "allow", subject: `ca:${id}`, data });
    return true;
  });
}

/** next -> current and current -> previous, in one transaction. */
export async function activateIntermediate(
  deps: RotationDeps,
  id: string,
  replaces: string | null,
): Promise<void> {
  await step(deps, "intermediate.activate", async (tx, at) => {
    if (!(await journal(tx, at, "intermediate", intermediateRotationId(id), "activated", { replaces })))
      return false;
    await casSlot(tx, id, "next", "current");
    if (replaces) {
      await casSlot(tx, replaces, "current", "previous");
      await journal(tx, at, "intermediate", intermediateRotationId(replaces), "deactivated", {
        successor: id,
      });
    }
    await audit(tx, deps, { type: "ca.intermediate.activate", subject: `ca:${id}`, data: { replaces } });
    return true;
  });
}

/** Out of the bundle: a previous intermediate whose leaves have all expired, or a next one no root will use. */
export async function retireIntermediate(
  deps: RotationDeps,
  id: string,
  reason: "drained" | "superseded",
): Promise<void> {
  await step(deps, "intermediate.retire", async (tx, at) => {
    if (!(await journal(tx, at, "intermediate", intermediateRotationId(id), "retired", { reason })))
      return false;
    await casSlot(tx, id, reason === "drained" ? "previous" : "next", "retired");
    await audit(tx, deps, { type: "ca.intermediate.retire", subject: `ca:${id}`, data: { reason } });
    return true;
  });
}

/** The intermediate schedule for `mayfly ca status`: what is due now and what waits for what. */
export async function intermediateStatus(deps: Pick<RotationDeps, "store" | "clock" | "config">) {
  const t = rotationTiming(deps.config);
  const view = await loadView(deps.store);
  const now = deps.clock.now();
  const plan = planIntermediates(view, now, t);
  return {
    now: iso(now),
    timing: t,
    intermediates: view.intermediates
      .filter((i) => i.slot !== "retired")
      .map((i) => ({
        id: i.id,
        slot: i.slot,
        issuer: i.issuerId,
        fingerprint: fingerprint(i.der),
        notAfter: iso(i.notAfter),
        lastLeafNotAfter: iso(view.lastLeafNotAfter[i.id]),
      })),
    due: plan.actions,
    waiting: plan.waiting.map((w) => ({ ...w, at: iso(w.at) })),
  };
}
