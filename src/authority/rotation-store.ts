import { appendAudit } from "../audit/index.js";
import type { Config } from "../config/schema.js";
import { MayflyError } from "../errors/index.js";
import type { KeySpec, KeyStore } from "../keys/keystore.js";
import type { Clock, Random } from "../runtime/clock.js";
import type { Store, StoreTx } from "../store/store.js";
import type { AuditEventInput, CaCertificate, CaJournalKind } from "../store/types.js";
import { markRecorded } from "./deny.js";
import type { IntermediateNode, RotationView } from "./rotation-plan.js";
import { issuerIdOf } from "./rotation-x509.js";

/** What the rotation steps need. `faults` is for tests: called after each committed step. */
export interface RotationDeps {
  store: Store;
  keys: KeyStore;
  clock: Clock;
  random: Random;
  config: Config;
  /** The audit actor: "system" for the server's timer, "cli" for an operator. */
  actor: string;
  faults?: { afterCommit?: (step: string) => void };
}

const issuerIds = new Map<string, string>();
function issuerOf(c: CaCertificate): string {
  let id = issuerIds.get(c.id);
  if (!id) {
    id = issuerIdOf(c.der);
    issuerIds.set(c.id, id);
  }
  return id;
}

/** The CA rows, the journal and the last leaf under each intermediate not retired, in one transaction. */
export async function loadView(store: Store): Promise<RotationView> {
  return store.tx(async (tx) => {
    const rows = await tx.listCaCertificates();
    const journal = await tx.listCaJournal();
    const intermediates: IntermediateNode[] = rows
      .filter((r) => r.role === "intermediate")
      .map((r) => ({ ...r, issuerId: issuerOf(r) }));
    const lastLeafNotAfter: Record<string, number | null> = {};
    for (const i of intermediates) {
      if (i.slot !== "retired")
        lastLeafNotAfter[i.id] = await tx.maxCertificateNotAfter(Buffer.from(i.id, "hex"));
    }
    return { roots: rows.filter((r) => r.role === "root"), intermediates, journal, lastLeafNotAfter };
  });
}

export function specFor(config: Config): KeySpec {
  return { kind: "ec", curve: config.ca.curve };
}

/** A fresh key label: kind, UTC second and random suffix (replicas preparing at once never collide). */
export function newLabel(kind: string, now: number, random: Random): string {
  const stamp = new Date(now)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${kind}-${stamp}-${random.bytes(4).toString("hex")}`;
}

/** Thrown inside a step's transaction when another replica moved a slot first; rolls it back. */
export function lostRace(what: string): MayflyError {
  return new MayflyError("store.conflict", `another replica changed ${what} first`);
}

export async function casSlot(
  tx: StoreTx,
  id: string,
  from: CaCertificate["slot"],
  to: CaCertificate["slot"],
): Promise<void> {
  if (!(await tx.compareAndSetCaSlot(id, from, to))) throw lostRace(`CA certificate ${id}`);
}

export async function journal(
  tx: StoreTx,
  at: number,
  kind: CaJournalKind,
  rotationId: string,
  step: string,
  data: Record<string, unknown> = {},
): Promise<boolean> {
  return (await tx.appendCaJournal({ rotationId, kind, step, at, data })) !== null;
}

/**
 * One rotation step: a transaction that first claims the audit chain head (so steps on
 * every backend queue behind each other) and then runs `fn`; the fault hook runs after
 * the commit. `fn` returns false when the step had already been taken.
 */
export async function step(
  deps: RotationDeps,
  name: string,
  fn: (tx: StoreTx, now: number) => Promise<boolean>,
): Promise<boolean> {
  const now = deps.clock.now();
  const done = await deps.store.tx(async (tx) => {
    await tx.auditHead();
    return fn(tx, now);
  });
  if (done) deps.faults?.afterCommit?.(name);
  return done;
}

export async function audit(
  tx: StoreTx,
  deps: RotationDeps,
  e: Omit<AuditEventInput, "actor" | "code" | "decision"> & Partial<AuditEventInput>,
): Promise<void> {
  await appendAudit(tx, deps.clock, { decision: "info", code: null, actor: deps.actor, ...e });
}

/** A refusal: one deny event with the code (in its own transaction), then the error. */
export async function refuse(
  deps: RotationDeps,
  type: string,
  err: MayflyError,
  data: Record<string, unknown>,
): Promise<never> {
  await deps.store.tx((tx) =>
    appendAudit(tx, deps.clock, {
      type,
      decision: "deny",
      code: err.code,
      actor: deps.actor,
      subject: null,
      data: { detail: err.detail, ...data },
    }),
  );
  throw markRecorded(err);
}

export const iso = (t: number | null | undefined): string | null =>
  t === null || t === undefined || !Number.isFinite(t) ? null : new Date(t).toISOString();
