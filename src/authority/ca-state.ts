import { createHash } from "node:crypto";
import { appendAudit } from "../audit/index.js";
import type { Config } from "../config/schema.js";
import { MayflyError } from "../errors/index.js";
import type { CaSigner, KeySpec, KeyStore } from "../keys/keystore.js";
import type { Clock, Random } from "../runtime/clock.js";
import type { Store } from "../store/store.js";
import type { CaCertificate, CaJournalEntry } from "../store/types.js";
import {
  buildIntermediate,
  buildRoot,
  createLeafEncoder,
  type LeafEncoder,
  newSerial,
} from "../x509/index.js";
import type { Bundle } from "./bundle.js";

/** The CA certificate that signs leaves now, with its key and precomputed encoder. */
export interface Issuer {
  record: CaCertificate;
  signer: CaSigner;
  encoder: LeafEncoder;
  keyId: Buffer; // SKI; certificates are recorded per issuer by it
  notAfter: number;
}

/** A cross certificate of a root rotation: `subjectId`'s key certified by root `issuerId`. */
export interface CrossSigned {
  subjectId: string;
  issuerId: string;
  der: Buffer;
}

export interface CaState {
  roots: CaCertificate[];
  intermediates: CaCertificate[];
  issuer: Issuer;
  /** The bundle's sequence number: how many rotation steps the store has journaled. */
  sequence: number;
  /** Cross certificates of the root rotation in progress (prepared, not yet retired). */
  crossSigned: CrossSigned[];
  /** The signed bundle GET /v1/bundle serves; null until signed (rotation-bundle.ts). */
  bundle: Bundle | null;
}

/** The cross certificates of the latest root rotation, while it is not retired. */
export function crossSignedOf(journal: CaJournalEntry[]): CrossSigned[] {
  const roots = journal.filter((e) => e.kind === "root");
  const prepared = roots.filter((e) => e.step === "prepared").at(-1);
  if (!prepared || roots.some((e) => e.rotationId === prepared.rotationId && e.step === "retired")) return [];
  const list = (prepared.data.crossSigned ?? []) as { subjectId: string; issuerId: string; der: string }[];
  return list.map((c) => ({
    subjectId: c.subjectId,
    issuerId: c.issuerId,
    der: Buffer.from(c.der, "base64url"),
  }));
}

/**
 * The CaState for the store's CA rows and journal: roots and intermediates not retired,
 * and the issuer for the current intermediate (re-used from `reuse` when it is the same
 * certificate, so a refresh does not reload its key).
 */
export async function caStateFromRows(
  rows: CaCertificate[],
  journal: CaJournalEntry[],
  deps: { keys: KeyStore; config: Config; reuse?: Issuer },
): Promise<CaState> {
  const roots = rows.filter((r) => r.role === "root" && r.slot !== "retired");
  const intermediates = rows.filter((r) => r.role === "intermediate" && r.slot !== "retired");
  const current = intermediates.find((r) => r.slot === "current");
  if (!current || roots.length === 0) {
    throw new MayflyError("config.invalid", "the store holds no current intermediate and root");
  }
  let issuer = deps.reuse;
  if (!issuer || issuer.record.id !== current.id) {
    const signer = await deps.keys.load(current.keyLabel);
    const encoder = createLeafEncoder({
      certificateDer: current.der,
      signer,
      assuranceOid: deps.config.ca.assuranceExtensionOid,
    });
    issuer = {
      record: current,
      signer,
      encoder,
      keyId: Buffer.from(current.id, "hex"),
      notAfter: current.notAfter,
    };
  }
  return {
    roots,
    intermediates,
    issuer,
    sequence: journal.length,
    crossSigned: crossSignedOf(journal),
    bundle: null,
  };
}

export function fingerprint(der: Buffer): string {
  return createHash("sha256").update(der).digest("hex").toUpperCase().match(/../g)!.join(":");
}

export function toPem(der: Buffer): string {
  const b64 = der
    .toString("base64")
    .match(/.{1,64}/g)!
    .join("\n");
  return `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
}

function stamp(t: number): string {
  return new Date(t)
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
}

function specFor(curve: Config["ca"]["curve"]): KeySpec {
  return { kind: "ec", curve };
}

/**
 * Creates a development root and intermediate on first start (when allowed), and
 * loads the current issuer. No CA and no permission to create one means refusal:
 * Mayfly never signs with a key it cannot chain to a root an operator chose.
 */
export async function loadOrCreateCa(deps: {
  store: Store;
  keys: KeyStore;
  clock: Clock;
  random: Random;
  config: Config;
}): Promise<{ state: CaState; created: boolean }> {
  const { store, keys, clock, random, config } = deps;
  let rows = await store.tx((tx) => tx.listCaCertificates());
  let created = false;
  if (rows.length === 0) {
    if (!config.ca.createDevRoot) {
      throw new MayflyError(
        "config.invalid",
        "no CA certificates are configured and ca.createDevRoot is false; run `mayfly init` first",
        { field: "ca.createDevRoot" },
      );
    }
    const now = clock.now();
    // Replicas starting together each generate a pair; a random suffix keeps their labels
    // apart (the same second would otherwise make the second one fail with key.exists).
    // Only the pair recorded below is used; the others stay unreferenced in the key store.
    const tag = `${stamp(now)}-${random.bytes(4).toString("hex")}`;
    const rootSigner = await keys.generate(`root-${tag}`, specFor(config.ca.curve));
    const interSigner = await keys.generate(`intermediate-${tag}`, specFor(config.ca.curve));
    const rootNotBefore = now - 60_000;
    const root = await buildRoot({
      signer: rootSigner,
      serial: newSerial(random),
      subject: config.ca.root,
      notBefore: rootNotBefore,
      notAfter: now + config.ca.rootLifetime,
    });
    const inter = await buildIntermediate({
      issuerCertificate: root.der,
      issuerSigner: rootSigner,
      subjectPublicKey: interSigner.spki,
      serial: newSerial(random),
      subject: config.ca.intermediate,
      notBefore: rootNotBefore,
      notAfter: Math.min(now + config.ca.intermediateLifetime, root.notAfter),
    });
    const rootRow: CaCertificate = {
      id: root.ski.toString("hex"),
      role: "root",
      slot: "current",
      keyLabel: rootSigner.label,
      der: root.der,
      notBefore: root.notBefore,
      notAfter: root.notAfter,
      createdAt: now,
    };
    const interRow: CaCertificate = {
      id: inter.ski.toString("hex"),
      role: "intermediate",
      slot: "current",
      keyLabel: interSigner.label,
      der: inter.der,
      notBefore: inter.notBefore,
      notAfter: inter.notAfter,
      createdAt: now,
    };
    await store.tx(async (tx) => {
      // A concurrent first start (another replica) may have won; keep theirs. Claiming
      // the audit chain head first serialises first starts on every backend (on
      // PostgreSQL, READ COMMITTED would otherwise let two replicas both see no CA).
      await tx.auditHead();
      if ((await tx.listCaCertificates()).length > 0) return;
      await tx.insertCaCertificate(rootRow);
      await tx.insertCaCertificate(interRow);
      await appendAudit(tx, clock, {
        type: "ca.init",
        decision: "info",
        code: null,
        actor: "system",
        subject: `ca:${rootRow.id}`,
        data: {
          development: true,
          root: { id: rootRow.id, fingerprint: fingerprint(root.der), keyLabel: rootRow.keyLabel },
          intermediate: { id: interRow.id, fingerprint: fingerprint(inter.der), keyLabel: interRow.keyLabel },
        },
      });
      created = true;
    });
    rows = await store.tx((tx) => tx.listCaCertificates());
  }
  const journal = await store.tx((tx) => tx.listCaJournal());
  return { state: await caStateFromRows(rows, journal, { keys, config }), created };
}
