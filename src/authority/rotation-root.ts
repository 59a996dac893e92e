import { X509Certificate } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import { buildIntermediate, buildRoot, newSerial } from "../x509/index.js";
import { fingerprint } from "./ca-state.js";
import { canaryIntermediate } from "./rotation-intermediate.js";
import {
  intermediateRotationId,
  journalStep,
  type RootRotationFacts,
  type RotationView,
  rootRotationFacts,
  rootRotationId,
} from "./rotation-plan.js";
import {
  audit,
  casSlot,
  iso,
  journal,
  loadView,
  newLabel,
  type RotationDeps,
  refuse,
  specFor,
  step,
} from "./rotation-store.js";
import { rotationTiming } from "./rotation-timing.js";
import { buildCrossCertificate } from "./rotation-x509.js";

// The root rotation ceremony, one operator command per step:
//   prepare  - a new root and its first intermediate, cross-signed both ways with the old
//              root, published in the bundle as next; then the intermediate's canary.
//   activate - once the next root has been published for rotation.propagation (or with
//              --force, audited): it becomes current, its intermediate signs.
//   retire   - once no unexpired certificate chains to the old root: out of the bundle.
// Each step is journaled in the transaction that moves the slots, so a crash between two
// steps leaves a state `status` explains and the next command continues.

export interface RootStatus
  extends Omit<
    RootRotationFacts,
    "preparedAt" | "activateAllowedAt" | "activatedAt" | "retireAllowedAt" | "retiredAt" | "oldIntermediates"
  > {
  now: string;
  roots: { id: string; slot: string; subject: string; fingerprint: string; notAfter: string }[];
  preparedAt: string | null;
  activateAllowedAt: string | null;
  activatedAt: string | null;
  retireAllowedAt: string | null;
  retiredAt: string | null;
  oldIntermediates: { id: string; slot: string; lastLeafNotAfter: string | null }[];
  /** The next ceremony step, and what it waits for (null: nothing). */
  next: { step: "prepare" | "activate" | "retire"; allowedAt: string | null; waitsFor: string | null } | null;
  /** True when the command found its step already taken (a re-run after a crash or by another operator). */
  alreadyDone?: boolean;
}

function subjectOf(der: Buffer): string {
  // For people; nothing parses it.
  return new X509Certificate(der).subject.replace(/\n/g, ", ");
}

export async function rootStatus(
  deps: Pick<RotationDeps, "store" | "clock" | "config">,
): Promise<RootStatus> {
  return statusOf(await loadView(deps.store), deps);
}

function statusOf(view: RotationView, deps: Pick<RotationDeps, "clock" | "config">): RootStatus {
  const t = rotationTiming(deps.config);
  const f = rootRotationFacts(view, t);
  const now = deps.clock.now();
  let next: RootStatus["next"];
  if (f.phase === "steady") next = { step: "prepare", allowedAt: iso(now), waitsFor: null };
  else if (f.phase === "prepared") {
    const waits = [
      now < f.activateAllowedAt!
        ? `the next root to be published for rotation.propagation (until ${iso(f.activateAllowedAt)})`
        : null,
      f.canaried
        ? null
        : "the canary signature of the new intermediate (run `mayfly root prepare` or `activate` again)",
    ].filter((w) => w !== null);
    next = { step: "activate", allowedAt: iso(f.activateAllowedAt), waitsFor: waits.join("; ") || null };
  } else {
    const blockers = f.oldIntermediates
      .filter((i) => i.lastLeafNotAfter !== null && i.lastLeafNotAfter + t.skew > now)
      .map((i) => `leaves of intermediate ${i.id} (last expires ${iso(i.lastLeafNotAfter)})`);
    if (now < f.activatedAt! + t.drain)
      blockers.unshift(`the drain period after activation (until ${iso(f.activatedAt! + t.drain)})`);
    next = { step: "retire", allowedAt: iso(f.retireAllowedAt), waitsFor: blockers.join("; ") || null };
  }
  return {
    ...f,
    now: iso(now)!,
    roots: view.roots
      .filter((r) => r.slot !== "retired")
      .map((r) => ({
        id: r.id,
        slot: r.slot,
        subject: subjectOf(r.der),
        fingerprint: fingerprint(r.der),
        notAfter: iso(r.notAfter)!,
      })),
    preparedAt: iso(f.preparedAt),
    activateAllowedAt: iso(f.activateAllowedAt),
    activatedAt: iso(f.activatedAt),
    retireAllowedAt: iso(f.retireAllowedAt),
    retiredAt: iso(f.retiredAt),
    oldIntermediates: f.oldIntermediates.map((i) => ({ ...i, lastLeafNotAfter: iso(i.lastLeafNotAfter) })),
    next,
  };
}

/** `mayfly root prepare`. Re-run after a crash, it finishes the canary of a prepared rotation. */
export async function rootPrepare(deps: RotationDeps): Promise<RootStatus> {
  const { config, clock, random, keys } = deps;
  const t = rotationTiming(config);
  let view = await loadView(deps.store);
  const facts = rootRotationFacts(view, t);
  if (facts.phase === "prepared" && !facts.canaried && facts.intermediate) {
    await canaryIntermediate(deps, view, facts.intermediate);
    return { ...(await rootStatus(deps)), alreadyDone: true };
  }
  if (facts.phase !== "steady") {
    throw new MayflyError(
      "rotation.in_progress",
      `root rotation ${facts.rotationId} is ${facts.phase}; finish it first`,
      {
        extra: { rotationId: facts.rotationId, phase: facts.phase },
      },
    );
  }
  const old = view.roots.find((r) => r.slot === "current");
  if (!old) throw new MayflyError("internal.error", "the store holds no current root");
  const now = clock.now();
  const oldSigner = await keys.load(old.keyLabel);
  const rootSigner = await keys.generate(newLabel("root", now, random), specFor(config));
  const interSigner = await keys.generate(newLabel("intermediate", now, random), specFor(config));
  const generation = view.roots.length + 1;
  const root = await buildRoot({
    signer: rootSigner,
    serial: newSerial(random),
    subject: { ...config.ca.root, commonName: `${config.ca.root.commonName} G${generation}` },
    notBefore: now - t.skew,
    notAfter: now + config.ca.rootLifetime,
  });
  const id = root.ski.toString("hex");
  const crossNew = await buildCrossCertificate({
    subject: root.der,
    issuer: old.der,
    issuerSigner: oldSigner,
    serial: newSerial(random),
    notBefore: now - t.skew,
  });
  const crossOld = await buildCrossCertificate({
    subject: old.der,
    issuer: root.der,
    issuerSigner: rootSigner,
    serial: newSerial(random),
    notBefore: now - t.skew,
  });
  const inter = await buildIntermediate({
    issuerCertificate: root.der,
    issuerSigner: rootSigner,
    subjectPublicKey: interSigner.spki,
    serial: newSerial(random),
    subject: config.ca.intermediate,
    notBefore: now - t.skew,
    notAfter: Math.min(now + config.ca.intermediateLifetime, root.notAfter),
  });
  const interId = inter.ski.toString("hex");
  const prepared = await step(deps, "root.prepare", async (tx, at) => {
    if (!(await journal(tx, at, "root", rootRotationId(old.id), "successor-prepared", { successor: id })))
      return false;
    await tx.insertCaCertificate({
      id,
      role: "root",
      slot: "next",
      keyLabel: rootSigner.label,
      der: root.der,
      notBefore: root.notBefore,
      notAfter: root.notAfter,
      createdAt: at,
    });
    await tx.insertCaCertificate({
      id: interId,
      role: "intermediate",
      slot: "next",
      keyLabel: interSigner.label,
      der: inter.der,
      notBefore: inter.notBefore,
      notAfter: inter.notAfter,
      createdAt: at,
    });
    const data = {
      from: old.id,
      intermediate: interId,
      fingerprint: fingerprint(root.der),
      keyLabel: rootSigner.label,
      crossSigned: [
        { subjectId: id, issuerId: old.id, der: crossNew.toString("base64url") },
        { subjectId: old.id, issuerId: id, der: crossOld.toString("base64url") },
      ],
    };
    await journal(tx, at, "root", rootRotationId(id), "prepared", data);
    await journal(tx, at, "intermediate", intermediateRotationId(interId), "prepared", {
      issuer: id,
      keyLabel: interSigner.label,
      fingerprint: fingerprint(inter.der),
    });
    await audit(tx, deps, {
      type: "ca.root.prepare",
      subject: `ca:${id}`,
      data: {
        from: old.id,
        root: { id, fingerprint: fingerprint(root.der), notAfter: iso(root.notAfter) },
        intermediate: { id: interId, fingerprint: fingerprint(inter.der) },
        crossSigned: [fingerprint(crossNew), fingerprint(crossOld)],
      },
    });
    return true;
  });
  if (!prepared)
    throw new MayflyError(
      "rotation.in_progress",
      "another operator or replica prepared a root rotation first",
    );
  view = await loadView(deps.store);
  await canaryIntermediate(deps, view, interId);
  return rootStatus(deps);
}

/** `mayfly root activate [--force]`. */
export async function rootActivate(deps: RotationDeps, opts: { force?: boolean } = {}): Promise<RootStatus> {
  const t = rotationTiming(deps.config);
  let view = await loadView(deps.store);
  let f = rootRotationFacts(view, t);
  if (f.phase === "activated") return { ...statusOf(view, deps), alreadyDone: true };
  if (f.phase !== "prepared") {
    return refuse(
      deps,
      "ca.root.activate",
      new MayflyError(
        "rotation.nothing_prepared",
        "no next root is prepared: run `mayfly root prepare` first",
      ),
      {},
    );
  }
  const now = deps.clock.now();
  const early = f.activateAllowedAt! - now;
  if (early > 0 && !opts.force) {
    return refuse(
      deps,
      "ca.root.activate",
      new MayflyError(
        "rotation.too_early",
        `the next root has been published for less than rotation.propagation; activate at or after ${iso(f.activateAllowedAt)} (or --force)`,
        {
          extra: { allowedAt: iso(f.activateAllowedAt), rotationId: f.rotationId },
        },
      ),
      { rotationId: f.rotationId, allowedAt: iso(f.activateAllowedAt) },
    );
  }
  if (!f.canaried) {
    await canaryIntermediate(deps, view, f.intermediate!);
    view = await loadView(deps.store);
    f = rootRotationFacts(view, t);
  }
  const forced = early > 0;
  const from = f.from!;
  const to = f.to!;
  const inter = f.intermediate!;
  const curInter = view.intermediates.find((i) => i.slot === "current") ?? null;
  const staleNext = view.intermediates.filter((i) => i.slot === "next" && i.issuerId === from);
  const done = await step(deps, "root.activate", async (tx, at) => {
    const data = { forced, earlyByMs: forced ? early : 0, from, intermediate: inter };
    if (!(await journal(tx, at, "root", f.rotationId!, "activated", data))) return false;
    await casSlot(tx, to, "next", "current");
    await casSlot(tx, from, "current", "previous");
    await casSlot(tx, inter, "next", "current");
    await journal(tx, at, "intermediate", intermediateRotationId(inter), "activated", {
      replaces: curInter?.id ?? null,
    });
    if (curInter) {
      await casSlot(tx, curInter.id, "current", "previous");
      await journal(tx, at, "intermediate", intermediateRotationId(curInter.id), "deactivated", {
        successor: inter,
      });
    }
    // A next intermediate of the old root never signed anything and never will.
    for (const n of staleNext) {
      await casSlot(tx, n.id, "next", "retired");
      await journal(tx, at, "intermediate", intermediateRotationId(n.id), "retired", {
        reason: "superseded",
      });
    }
    await audit(tx, deps, {
      type: "ca.root.activate",
      decision: "allow",
      subject: `ca:${to}`,
      data: { ...data, forcedByOperator: forced },
    });
    return true;
  });
  return { ...(await rootStatus(deps)), ...(done ? {} : { alreadyDone: true }) };
}

/** `mayfly root retire`: refused while any unexpired certificate chains to the old root. */
export async function rootRetire(deps: RotationDeps): Promise<RootStatus> {
  const t = rotationTiming(deps.config);
  const view = await loadView(deps.store);
  const f = rootRotationFacts(view, t);
  if (f.phase === "steady" && f.retiredAt !== null) return { ...statusOf(view, deps), alreadyDone: true };
  if (f.phase !== "activated") {
    return refuse(
      deps,
      "ca.root.retire",
      new MayflyError(
        "rotation.nothing_to_retire",
        f.phase === "prepared"
          ? "the next root is not active yet: run `mayfly root activate` first"
          : "no previous root is waiting to be retired",
      ),
      {},
    );
  }
  const now = deps.clock.now();
  if (now < f.retireAllowedAt!) {
    const s = statusOf(view, deps);
    return refuse(
      deps,
      "ca.root.retire",
      new MayflyError(
        "rotation.retire_blocked",
        `certificates that chain to root ${f.from} may still be valid; retire at or after ${iso(f.retireAllowedAt)} (waiting for ${s.next?.waitsFor})`,
        {
          extra: { allowedAt: iso(f.retireAllowedAt), waitsFor: s.next?.waitsFor ?? null },
        },
      ),
      { rotationId: f.rotationId, allowedAt: iso(f.retireAllowedAt) },
    );
  }
  const from = f.from!;
  const old = view.intermediates.filter((i) => i.issuerId === from && i.slot !== "retired");
  const done = await step(deps, "root.retire", async (tx, at) => {
    if (!(await journal(tx, at, "root", f.rotationId!, "retired", { retired: from }))) return false;
    await casSlot(tx, from, "previous", "retired");
    for (const i of old) {
      if (journalStep(view, intermediateRotationId(i.id), "retired")) continue;
      await casSlot(tx, i.id, i.slot, "retired");
      await journal(tx, at, "intermediate", intermediateRotationId(i.id), "retired", {
        reason: "root retired",
      });
    }
    await audit(tx, deps, {
      type: "ca.root.retire",
      decision: "allow",
      subject: `ca:${from}`,
      data: { rotationId: f.rotationId, intermediates: old.map((i) => i.id) },
    });
    return true;
  });
  return { ...(await rootStatus(deps)), ...(done ? {} : { alreadyDone: true }) };
}
