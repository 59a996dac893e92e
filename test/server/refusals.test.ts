import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyAuditChain } from "../../src/audit/index.js";
import type { AuditEvent } from "../../src/store/types.js";
import { startTestCa, type TestCa } from "../helpers/test-ca.js";

// Every refusal the JSON API answers is in the audit log once (src/server/refusals.ts): the
// ones the HTTP layer makes before any authority function decides, as "request.refused",
// and the authority's own denials, which are not written twice. The issuance routes are
// covered request by request, on both paths, in fast-issuance.test.ts; these are the
// express app's other routes.

let ca: TestCa;
beforeAll(async () => {
  ca = await startTestCa();
});
afterAll(async () => {
  await ca?.close();
});

async function head(): Promise<number> {
  return ca.running.store.tx(async (tx) => (await tx.auditHead())?.seq ?? 0);
}

/** The answer and the audit events it wrote. */
async function refused(
  path: string,
  opts: { method?: string; body?: unknown; rawBody?: string; contentType?: string },
): Promise<{ status: number; code: string; events: AuditEvent[] }> {
  const seq = await head();
  const res = await ca.call(path, opts.body, opts);
  const events = await ca.running.store.tx((tx) => tx.listAuditEvents(seq + 1, 100));
  return { status: res.status, code: (res.json as { code: string }).code, events };
}

describe("refusals of the JSON API are audited once", () => {
  const HTTP_LAYER = [
    {
      name: "no such route",
      path: "/v1/nothing-here",
      opts: { method: "GET" },
      status: 404,
      code: "request.not_found",
    },
    {
      name: "not JSON",
      path: "/v1/devices/activations",
      opts: { rawBody: "ek=1", contentType: "text/plain" },
      status: 415,
      code: "request.unsupported_media_type",
    },
    {
      name: "malformed JSON",
      path: "/v1/devices/activations",
      opts: { rawBody: '{"ek":', contentType: "application/json" },
      status: 400,
      code: "request.invalid",
    },
    {
      name: "oversize body",
      path: "/v1/devices/activations",
      opts: { rawBody: JSON.stringify({ pad: "x".repeat(100_000) }), contentType: "application/json" },
      status: 413,
      code: "request.too_large",
    },
  ];
  for (const c of HTTP_LAYER) {
    it(`the HTTP layer's: ${c.name} (${c.code})`, async () => {
      const method = c.opts.method ?? "POST";
      const r = await refused(c.path, c.opts);
      expect([r.status, r.code]).toEqual([c.status, c.code]);
      expect(r.events).toHaveLength(1);
      expect(r.events[0]).toMatchObject({
        type: "request.refused",
        decision: "deny",
        code: c.code,
        actor: null,
        subject: null,
        data: { method, path: c.path },
      });
    });
  }

  it("an authority denial is written by the authority only, not again by the server", async () => {
    const r = await refused("/v1/devices/activations", { body: { ekPublic: "AAAA" } });
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.events).toHaveLength(1);
    expect(r.events[0]).toMatchObject({ type: "device.activation.start", decision: "deny", code: r.code });
  });

  it("cuts a long path in the event", async () => {
    const path = `/v1/${"a".repeat(1000)}`;
    const r = await refused(path, { method: "GET" });
    expect(r.code).toBe("request.not_found");
    expect(r.events).toHaveLength(1);
    expect(r.events[0]!.data.path).toBe(`${path.slice(0, 256)}…`);
  });

  it("answers the refusal even when the store cannot take the event", async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString("utf8").split("\n")) if (l) lines.push(JSON.parse(l));
        cb();
      },
    });
    const broken = await startTestCa(undefined, { log: pino({ level: "info" }, sink) });
    try {
      await broken.running.store.close();
      const res = await broken.call("/v1/nothing-here", undefined, { method: "GET" });
      expect([res.status, (res.json as { code: string }).code]).toEqual([404, "request.not_found"]);
      expect(lines.some((l) => l.msg === "could not record a refused request in the audit log")).toBe(true);
    } finally {
      await broken.close().catch(() => undefined);
    }
  });

  it("leaves the chain whole", async () => {
    expect((await verifyAuditChain(ca.running.store)).ok).toBe(true);
  });
});
