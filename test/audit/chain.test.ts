import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { appendAudit, auditHashInput, GENESIS_HASH } from "../../src/audit/chain.js";
import { assertAuditChain, verifyAuditChain } from "../../src/audit/verify.js";
import { isMayflyError } from "../../src/errors/index.js";
import { ManualClock } from "../../src/runtime/clock.js";
import { SqliteStore } from "../../src/store/sqlite/index.js";
import type { AuditEventInput } from "../../src/store/types.js";
import { buildLog, input, T0, tempDir } from "./audit-fixtures.js";

const dir = tempDir();
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function memoryStore(): Promise<SqliteStore> {
  const s = new SqliteStore({ path: ":memory:" });
  await s.migrate();
  return s;
}

describe("appendAudit", () => {
  it("chains events from the genesis hash and verifies end to end", async () => {
    const path = join(dir, "chain.db");
    const events = await buildLog(path, 40);
    expect(events[0]?.seq).toBe(1);
    expect(events[0]?.prevHash).toEqual(GENESIS_HASH);
    for (let i = 1; i < events.length; i++) {
      expect(events[i]?.seq).toBe(i + 1);
      expect(events[i]?.prevHash).toEqual(events[i - 1]?.hash);
    }
    const store = new SqliteStore({ path });
    for (const pageSize of [1000, 7, 1]) {
      const r = await verifyAuditChain(store, { pageSize });
      expect(r).toEqual({ ok: true, count: 40, headSeq: 40, headHash: events[39]?.hash });
    }
    expect(
      await verifyAuditChain(store, { expectedHead: { seq: 40, hash: events[39]!.hash } }),
    ).toMatchObject({
      ok: true,
    });
    // A checkpoint older than the head, given as hex, is also an anchor.
    const mid = { seq: 25, hash: events[24]!.hash.toString("hex").toUpperCase() };
    expect(await verifyAuditChain(store, { expectedHead: mid })).toMatchObject({ ok: true, count: 40 });
    await assertAuditChain(store);
    await store.close();
  });

  it("verifies an empty log", async () => {
    const s = await memoryStore();
    expect(await verifyAuditChain(s)).toEqual({ ok: true, count: 0, headSeq: 0, headHash: GENESIS_HASH });
    await s.close();
  });

  it("hashes a fixed, versioned encoding (pinned so a format change cannot slip in)", async () => {
    const s = await memoryStore();
    const clock = new ManualClock(T0);
    const e = await s.tx((tx) =>
      appendAudit(tx, clock, {
        type: "ca.init",
        decision: "info",
        code: null,
        actor: "cli",
        subject: null,
        data: { z: 1, a: "é" },
      }),
    );
    const expected =
      `{"actor":"cli","code":null,"data":{"a":"é","z":1},"decision":"info","prevHash":"${"00".repeat(32)}",` +
      `"seq":1,"subject":null,"ts":${T0},"type":"ca.init","v":1}`;
    expect(auditHashInput(e)).toBe(expected);
    expect(e.hash).toEqual(createHash("sha256").update(expected, "utf8").digest());
    await s.close();
  });

  it("rolls back with its transaction: the chain continues from the committed head", async () => {
    const s = await memoryStore();
    const clock = new ManualClock(T0);
    await s.tx((tx) => appendAudit(tx, clock, input(1)));
    await s
      .tx(async (tx) => {
        await appendAudit(tx, clock, input(2));
        throw new Error("decision abandoned");
      })
      .catch(() => undefined);
    const e = await s.tx((tx) => appendAudit(tx, clock, input(3)));
    expect(e.seq).toBe(2);
    expect(await verifyAuditChain(s)).toMatchObject({ ok: true, count: 2 });
    await s.close();
  });

  it("stores a copy of data, so later mutation by the caller changes nothing", async () => {
    const s = await memoryStore();
    const data: Record<string, unknown> = { list: [1] };
    await s.tx((tx) => appendAudit(tx, new ManualClock(T0), { ...input(1), data }));
    (data.list as number[]).push(2);
    expect(await verifyAuditChain(s)).toMatchObject({ ok: true });
    await s.close();
  });

  it("refuses malformed input and writes nothing", async () => {
    const s = await memoryStore();
    const clock = new ManualClock(T0);
    const bad: [Partial<AuditEventInput>, string][] = [
      [{ decision: "deny", code: null }, "code"],
      [{ decision: "maybe" as never }, "decision"],
      [{ type: "" }, "type"],
      [{ actor: 5 as never }, "actor"],
      [{ data: [] as never }, "data"],
      [{ data: { raw: Buffer.from("x") } }, "data.raw"],
      [{ data: { n: Number.NaN } }, "data.n"],
    ];
    for (const [over, field] of bad) {
      const err = await s
        .tx((tx) => appendAudit(tx, clock, { ...input(1), ...over }))
        .catch((e: unknown) => e);
      expect(isMayflyError(err) && [err.code, err.field]).toEqual(["internal.error", field]);
    }
    const fractional = new ManualClock(T0 + 0.5);
    await expect(s.tx((tx) => appendAudit(tx, fractional, input(1)))).rejects.toThrow(/integer/);
    expect(await s.tx((tx) => tx.auditHead())).toBeNull();
    await s.close();
  });
});
