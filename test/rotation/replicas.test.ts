import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/index.js";
import { EvidenceRegistry } from "../../src/evidence/registry.js";
import { ManualClock, systemRandom } from "../../src/runtime/clock.js";
import { type RunningServer, startServer } from "../../src/server/start.js";
import { https } from "../helpers/https.js";
import { useTestDatabase } from "../helpers/postgres.js";
import { testSignedFormat } from "../helpers/test-evidence.js";

// Three replicas (servers over one database, SQLite or PostgreSQL, and one key directory) with rotation.auto:
// each runs the tick on its own timer. They take every step once between them (the
// journal's unique steps and the slot compare-and-set), and all converge on the same
// issuer and bundle by re-reading the store, without a restart.

const HOUR = 3_600_000;
const CONFIG = `
profiles:
  default:
    formats: [test-signed]
    keyResidency: [bound]
rotation:
  auto: true
  checkInterval: 1s
  propagation: 1h
  intermediateActiveFor: 6h
`;

const db = useTestDatabase();

for (const backend of ["sqlite", "postgres"] as const) {
  describe(`rotation across replicas (${backend})`, () => {
    let dir: string;
    let clock: ManualClock;
    let replicas: RunningServer[] = [];
    beforeAll(async () => {
      dir = await mkdtemp(join(tmpdir(), "mayfly-rot-replicas-"));
      const store = backend === "postgres" ? `store:\n  url: ${await db().freshSchemaUrl()}\n` : "";
      await writeFile(join(dir, "mayfly.yaml"), CONFIG + store);
      const rc = await loadConfig(join(dir, "mayfly.yaml"), {
        MAYFLY_DATA_DIR: join(dir, "data"),
        MAYFLY_LISTEN: "127.0.0.1:0",
      });
      clock = new ManualClock(Date.now() - 3 * 24 * HOUR);
      const deps = {
        clock,
        random: systemRandom,
        log: pino({ level: "silent" }),
        evidence: new EvidenceRegistry([testSignedFormat]),
      };
      replicas.push(await startServer(rc, deps));
      replicas.push(...(await Promise.all([startServer(rc, deps), startServer(rc, deps)])));
    });
    afterAll(async () => {
      for (const r of replicas) await r.close();
      replicas = [];
      await rm(dir, { recursive: true, force: true });
    });

    async function until(what: string, f: () => boolean, ms = 8_000): Promise<void> {
      const end = Date.now() + ms;
      while (!f()) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await sleep(50);
      }
    }

    it("the timers take each step once, and every replica converges on the new issuer", async () => {
      const first = replicas[0]!.ca.issuer.record.id;
      expect(new Set(replicas.map((r) => r.ca.issuer.record.id))).toEqual(new Set([first]));
      const notBefore = replicas[0]!.ca.issuer.record.notBefore;

      clock.set(notBefore + 5 * HOUR);
      await until("a next intermediate on every replica", () =>
        replicas.every((r) => r.ca.intermediates.some((i) => i.slot === "next")),
      );
      clock.set(notBefore + 6 * HOUR);
      await until("every replica signing with the new intermediate", () =>
        replicas.every((r) => r.ca.issuer.record.id !== first),
      );
      const issuer = replicas[0]!.ca.issuer.record.id;
      expect(new Set(replicas.map((r) => r.ca.issuer.record.id))).toEqual(new Set([issuer]));

      const journal = await replicas[0]!.store.tx((tx) => tx.listCaJournal());
      const steps = journal.map((e) => `${e.rotationId.slice(0, 20)} ${e.step}`);
      expect(steps.filter((s) => s.endsWith(" prepared"))).toHaveLength(1);
      expect(steps.filter((s) => s.endsWith(" activated"))).toHaveLength(1);
      const rows = await replicas[0]!.store.tx((tx) => tx.listCaCertificates());
      expect(rows.filter((r) => r.role === "intermediate").map((r) => r.slot)).toEqual([
        "previous",
        "current",
      ]);
      const audit = await replicas[0]!.store.tx((tx) => tx.listAuditEvents(1, 1000));
      expect(audit.filter((e) => e.type === "ca.intermediate.activate")).toHaveLength(1);

      // Every replica serves the same signed bundle content (sequence and certificates).
      const bundles = await Promise.all(
        replicas.map((r) =>
          https(`${r.url}/v1/bundle`, { insecure: true }).then(
            (x) => x.json as { sequence: number; intermediates: { id: string }[] },
          ),
        ),
      );
      expect(
        new Set(bundles.map((b) => `${b.sequence}:${b.intermediates.map((i) => i.id).join()}`)).size,
      ).toBe(1);
    });
  });
}
