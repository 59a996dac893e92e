import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { appendAudit } from "../../src/audit/chain.js";
import { ManualClock } from "../../src/runtime/clock.js";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import type { AuditEvent, AuditEventInput } from "../../src/store/types.js";

export const T0 = 1_750_000_000_000;

export function tempDir(): string {
  return mkdtempSync(join(tmpdir(), "mayfly-audit-"));
}

/** The i-th event of a varied log: odd seqs allowed, even seqs denied with a code. */
export function input(i: number): AuditEventInput {
  const deny = i % 2 === 0;
  return {
    type: i % 5 === 0 ? "challenge.create" : "certificate.issue",
    decision: deny ? "deny" : "allow",
    code: deny ? "owner.inactive" : null,
    actor: `agent:a${i % 3}`,
    subject: i % 4 === 0 ? null : `agent:a${i % 3}`,
    data: {
      i,
      serial: `0a${i.toString(16).padStart(2, "0")}`,
      nested: { ok: !deny, tags: ["x", i] },
      note: "é ✓",
    },
  };
}

/** A migrated SQLite file holding `count` chained events, one per millisecond. */
export async function buildLog(path: string, count: number): Promise<AuditEvent[]> {
  const store = new SqliteStore({ path, durability: "normal" });
  await store.migrate();
  const clock = new ManualClock(T0);
  const out: AuditEvent[] = [];
  for (let i = 1; i <= count; i++) {
    clock.advance(1);
    out.push(await store.tx((tx) => appendAudit(tx, clock, input(i))));
  }
  await store.close();
  return out;
}
