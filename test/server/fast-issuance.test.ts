import { Writable } from "node:stream";
import { connect } from "node:tls";
import { gzipSync } from "node:zlib";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { attest, newAgentKey, startTestCa, type TestAgent, type TestCa } from "../helpers/test-ca.js";

// The hand-written issuance handler (src/server/fast-issuance.ts) against the express app
// it stands in front of: one server, each request sent once down each path, compared on
// status, headers, body, the request log and the metrics it moved. Requests the handler
// leaves to express are in the table too, and each row says which path must answer it in
// fast mode, so a handler that took nothing (or too much) fails here.

let ca: TestCa;
let mode: "fast" | "express" = "express";
let tookFast = 0;
const logLines: Record<string, unknown>[] = [];

beforeAll(async () => {
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString("utf8").split("\n")) if (line) logLines.push(JSON.parse(line));
      cb();
    },
  });
  ca = await startTestCa(undefined, {
    log: pino({ level: "debug" }, sink),
    listener: {
      fastPath: () => mode === "fast",
      onFastPath: () => {
        tookFast++;
      },
    },
  });
});
afterAll(async () => {
  await ca?.close();
});

interface RawResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** One request, byte for byte as given, over its own TLS connection. */
function raw(head: string, body: Buffer | string = ""): Promise<RawResponse> {
  const u = new URL(ca.url);
  return new Promise((resolve, reject) => {
    const sock = connect({ host: u.hostname, port: Number(u.port), ca: ca.rootPem }, () => {
      // No half-close: TLS has none the server would wait out; "connection: close" ends it.
      sock.write(Buffer.concat([Buffer.from(head), Buffer.from(body)]));
    });
    const chunks: Buffer[] = [];
    sock.on("data", (c: Buffer) => chunks.push(c));
    sock.on("error", reject);
    sock.on("end", () => {
      const text = Buffer.concat(chunks).toString("utf8");
      const at = text.indexOf("\r\n\r\n");
      const [statusLine, ...lines] = text.slice(0, at).split("\r\n");
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      resolve({ status: Number(statusLine!.split(" ")[1]), headers, body: text.slice(at + 4) });
    });
  });
}

interface Req {
  method?: string;
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Send a transfer-encoding: chunked body instead of content-length. */
  chunked?: boolean;
}

function send(r: Req): Promise<RawResponse> {
  const body = r.body === undefined ? undefined : Buffer.from(r.body);
  const headers: Record<string, string> = { host: "127.0.0.1", connection: "close", ...r.headers };
  let payload: Buffer = Buffer.alloc(0);
  if (body && r.chunked) {
    headers["transfer-encoding"] = "chunked";
    payload = Buffer.concat([
      Buffer.from(`${body.length.toString(16)}\r\n`),
      body,
      Buffer.from("\r\n0\r\n\r\n"),
    ]);
  } else if (body) {
    headers["content-length"] ??= String(body.length);
    payload = body;
  }
  const head = `${r.method ?? "POST"} ${r.path} HTTP/1.1\r\n${Object.entries(headers)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join("")}\r\n`;
  return raw(head, payload);
}

const JSON_CT = { "content-type": "application/json" };

/** The counters the issuance routes move, from /metrics. */
async function counters(): Promise<Map<string, number>> {
  const res = await send({ method: "GET", path: "/metrics" });
  const out = new Map<string, number>();
  for (const line of res.body.split("\n")) {
    if (/^mayfly_(issuances_total|challenges_total|issuance_duration_seconds_count)\{/.test(line)) {
      const i = line.lastIndexOf(" ");
      out.set(line.slice(0, i), Number(line.slice(i + 1)));
    }
  }
  return out;
}

function delta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const d: Record<string, number> = {};
  for (const [k, v] of after) if (v !== (before.get(k) ?? 0)) d[k] = v - (before.get(k) ?? 0);
  return d;
}

interface Observed {
  res: RawResponse;
  took: "fast" | "express";
  metrics: Record<string, number>;
  logs: Record<string, unknown>[];
  /** The audit events the request wrote, without seq, ts and hashes. */
  audit: Record<string, unknown>[];
}

async function auditSeq(): Promise<number> {
  return ca.running.store.tx(async (tx) => (await tx.auditHead())?.seq ?? 0);
}

async function observe(m: "fast" | "express", r: Req): Promise<Observed> {
  const before = await counters();
  const seq = await auditSeq();
  const took = tookFast;
  const logsAt = logLines.length;
  mode = m;
  const res = await send(r);
  mode = "express";
  const served = tookFast > took ? "fast" : "express";
  // The request log is written on 'finish', which can trail the client's last byte.
  await new Promise((r) => setTimeout(r, 20));
  const logs = logLines
    .slice(logsAt)
    .filter((l) => l.path !== "/metrics")
    .map(({ time: _t, pid: _p, hostname: _h, ms, ...rest }) => {
      if (rest.msg === "request") expect(typeof ms).toBe("number");
      return rest;
    });
  const events = await ca.running.store.tx((tx) => tx.listAuditEvents(seq + 1, 100));
  const audit = events.map(({ type, decision, code, actor, subject, data }) => ({
    type,
    decision,
    code,
    actor,
    subject,
    data,
  }));
  return { res, took: served, metrics: delta(before, await counters()), logs, audit };
}

type Ctx = { agent: TestAgent; extra?: Record<string, string> };
interface Case {
  name: string;
  /** Which path answers in fast mode. */
  fast: boolean;
  prepare?: (agent: TestAgent) => Promise<Record<string, string>>;
  req: (c: Ctx) => Req;
  /** Body fields unique per answer: compared by shape. */
  unique?: Record<string, RegExp>;
}

const B64URL = /^[A-Za-z0-9_-]+$/;
const PEM = /^-----BEGIN CERTIFICATE-----\n[A-Za-z0-9+/=\n]+-----END CERTIFICATE-----\n$/;

async function validIssuanceBody(agent: TestAgent): Promise<Record<string, string>> {
  const ch = await ca.call(`/v1/agents/${agent.agentId}/challenges`, {});
  const nonce = Buffer.from((ch.json as { nonce: string }).nonce, "base64url");
  const k = await newAgentKey();
  const body = JSON.stringify({
    csr: k.csrDer.toString("base64url"),
    nonce: nonce.toString("base64url"),
    attestation: attest(agent.deviceKey, nonce, k.spki),
  });
  return { body };
}

const ch = (c: Ctx) => `/v1/agents/${c.agent.agentId}/challenges`;
const certs = (c: Ctx) => `/v1/agents/${c.agent.agentId}/certificates`;

const CASES: Case[] = [
  {
    name: "valid challenge",
    fast: true,
    req: (c) => ({ path: ch(c), headers: JSON_CT, body: "{}" }),
    unique: { nonce: B64URL },
  },
  {
    name: "valid issuance",
    fast: true,
    prepare: validIssuanceBody,
    req: (c) => ({ path: certs(c), headers: JSON_CT, body: c.extra!.body! }),
    unique: { certificate: PEM, serial: /^[0-9a-f]+$/ },
  },
  {
    name: "valid issuance, chunked, charset=UTF-8",
    fast: true,
    prepare: validIssuanceBody,
    req: (c) => ({
      path: certs(c),
      headers: { "content-type": "application/json; charset=UTF-8" },
      body: c.extra!.body!,
      chunked: true,
    }),
    unique: { certificate: PEM, serial: /^[0-9a-f]+$/ },
  },
  {
    name: "issuance denied: nonce never issued",
    fast: true,
    prepare: async (agent) => {
      const { body } = await validIssuanceBody(agent);
      return { body: body!.replace(/"nonce":"[^"]+"/, `"nonce":"${"A".repeat(43)}"`) };
    },
    req: (c) => ({ path: certs(c), headers: JSON_CT, body: c.extra!.body! }),
  },
  {
    name: "issuance: body of the wrong shape",
    fast: true,
    req: (c) => ({ path: certs(c), headers: JSON_CT, body: '{"csr":1}' }),
  },
  { name: "malformed JSON", fast: true, req: (c) => ({ path: certs(c), headers: JSON_CT, body: '{"csr":' }) },
  {
    name: "strict JSON: a string",
    fast: true,
    req: (c) => ({ path: certs(c), headers: JSON_CT, body: '"x"' }),
  },
  {
    name: "strict JSON: whitespace only",
    fast: true,
    req: (c) => ({ path: ch(c), headers: JSON_CT, body: " \n" }),
  },
  { name: "JSON array body", fast: true, req: (c) => ({ path: certs(c), headers: JSON_CT, body: " [1]" }) },
  {
    name: "BOM before JSON",
    fast: true,
    req: (c) => ({ path: ch(c), headers: JSON_CT, body: "\ufeff{}" }),
    unique: { nonce: B64URL },
  },
  {
    name: "no body, JSON type, content-length 0 (challenge)",
    fast: true,
    req: (c) => ({ path: ch(c), headers: { ...JSON_CT, "content-length": "0" } }),
    unique: { nonce: B64URL },
  },
  {
    name: "no body, JSON type, content-length 0 (certificate)",
    fast: true,
    req: (c) => ({ path: certs(c), headers: { ...JSON_CT, "content-length": "0" } }),
  },
  {
    name: "no body, JSON type, no length (certificate)",
    fast: true,
    req: (c) => ({ path: certs(c), headers: JSON_CT }),
  },
  {
    name: "no body, no type (challenge)",
    fast: false,
    req: (c) => ({ path: ch(c), headers: { "content-length": "0" } }),
    unique: { nonce: B64URL },
  },
  {
    name: "no body, no type (certificate)",
    fast: false,
    req: (c) => ({ path: certs(c) }),
  },
  {
    name: "body without a content type",
    fast: false,
    req: (c) => ({ path: certs(c), body: "{}" }),
  },
  {
    name: "wrong content type",
    fast: false,
    req: (c) => ({ path: ch(c), headers: { "content-type": "text/plain" }, body: "{}" }),
  },
  {
    name: "JSON with an unsupported charset",
    fast: false,
    req: (c) => ({
      path: ch(c),
      headers: { "content-type": "application/json; charset=latin1" },
      body: "{}",
    }),
  },
  {
    name: "gzip content encoding",
    fast: false,
    req: (c) => ({
      path: ch(c),
      headers: { ...JSON_CT, "content-encoding": "gzip" },
      body: gzipSync("{}"),
    }),
    unique: { nonce: B64URL },
  },
  {
    name: "oversize body (declared length)",
    fast: true,
    req: (c) => ({ path: certs(c), headers: JSON_CT, body: `{"csr":"${"A".repeat(70_000)}"}` }),
  },
  {
    name: "oversize body (chunked)",
    fast: true,
    req: (c) => ({
      path: certs(c),
      headers: JSON_CT,
      body: `{"csr":"${"A".repeat(70_000)}"}`,
      chunked: true,
    }),
  },
  {
    name: "unknown agent (challenge)",
    fast: true,
    req: () => ({ path: "/v1/agents/nobody-here/challenges", headers: JSON_CT, body: "{}" }),
  },
  {
    name: "unknown agent (certificate)",
    fast: true,
    req: () => ({
      path: "/v1/agents/nobody-here/certificates",
      headers: JSON_CT,
      body: JSON.stringify({ csr: "AA", nonce: "A".repeat(43), attestation: { format: "test-signed" } }),
    }),
  },
  {
    name: "bad agent id characters",
    fast: true,
    req: () => ({ path: "/v1/agents/bad.id@x/challenges", headers: JSON_CT, body: "{}" }),
  },
  {
    name: "agent id too long",
    fast: true,
    req: () => ({ path: `/v1/agents/${"a".repeat(65)}/certificates`, headers: JSON_CT, body: "{}" }),
  },
  {
    name: "bad agent id and malformed JSON (the body is checked first)",
    fast: true,
    req: () => ({ path: "/v1/agents/bad.id/challenges", headers: JSON_CT, body: "{" }),
  },
  {
    name: "percent-encoded agent id",
    fast: false,
    req: (c) => ({ path: ch(c).replace("agent-", "%61gent-"), headers: JSON_CT, body: "{}" }),
    unique: { nonce: B64URL },
  },
  {
    name: "percent-encoded slash in the agent id",
    fast: false,
    req: () => ({ path: "/v1/agents/a%2Fb/challenges", headers: JSON_CT, body: "{}" }),
  },
  {
    name: "a '#' in the path (parseurl cuts the path there)",
    fast: false,
    req: (c) => ({ path: `${ch(c)}#x`, headers: JSON_CT, body: "{}" }),
    unique: { nonce: B64URL },
  },
  { name: "GET on the route", fast: false, req: (c) => ({ method: "GET", path: ch(c) }) },
  {
    name: "PUT on the route",
    fast: false,
    req: (c) => ({ method: "PUT", path: certs(c), headers: JSON_CT, body: "{}" }),
  },
  {
    name: "trailing slash",
    fast: false,
    req: (c) => ({ path: `${ch(c)}/`, headers: JSON_CT, body: "{}" }),
    unique: { nonce: B64URL },
  },
  {
    name: "other case",
    fast: false,
    req: (c) => ({ path: ch(c).replace("/v1/", "/V1/"), headers: JSON_CT, body: "{}" }),
    unique: { nonce: B64URL },
  },
  {
    name: "extra segment",
    fast: false,
    req: (c) => ({ path: `${ch(c)}/extra`, headers: JSON_CT, body: "{}" }),
  },
  {
    name: "query string (challenge)",
    fast: true,
    req: (c) => ({ path: `${ch(c)}?a=1&b`, headers: JSON_CT, body: "{}" }),
    unique: { nonce: B64URL },
  },
  {
    name: "query string on a refusal (the problem's instance carries it)",
    fast: true,
    req: (c) => ({ path: `${certs(c)}?x=%20y`, headers: JSON_CT, body: "[" }),
  },
];

/** The answer with what legitimately differs between two answers normalised away. */
function normalise(o: Observed, c: Case, agentId: string) {
  const headers = { ...o.res.headers };
  // Each is its own answer at its own time.
  expect(headers.date).toMatch(/GMT$/);
  delete headers.date;
  // Checked against each answer's own body; the two bodies differ in the agent id (agent-9
  // and agent-10 differ in length) and in unique fields, and are compared normalised below.
  expect(Number(headers["content-length"])).toBe(Buffer.byteLength(o.res.body));
  delete headers["content-length"];
  // The routes build their answers as text (issuance-answer.ts): it must be what res.json's
  // JSON.stringify gives for the same members in the same order.
  if (o.res.status === 201) expect(JSON.stringify(JSON.parse(o.res.body))).toBe(o.res.body);
  const anon = (text: string) =>
    text.split(agentId).join("<agent>").split(agentId.replace("agent-", "%61gent-")).join("<agent>");
  let body: unknown = o.res.body;
  try {
    body = JSON.parse(anon(o.res.body));
  } catch {
    // not JSON: compared as text
  }
  if (c.unique && body && typeof body === "object") {
    const b = body as Record<string, unknown>;
    for (const [field, shape] of Object.entries(c.unique)) {
      expect(b[field], field).toMatch(shape);
      b[field] = `<${field}>`;
    }
  }
  const logs = o.logs.map((l) => JSON.parse(anon(JSON.stringify(l))));
  // Values unique per request (nonces, serials, fingerprints) by shape, as in the body.
  const audit = o.audit.map((e) =>
    JSON.parse(
      anon(JSON.stringify(e)).replace(
        /"(nonce|serial|fingerprint|certifiedName|signer|clock|ownerId|deviceId|notBefore|notAfter)":("[^"]*"|\d+)/g,
        '"$1":"<$1>"',
      ),
    ),
  );
  return { status: o.res.status, headers, body, metrics: o.metrics, logs, audit };
}

describe("the hand-written issuance handler answers as the express app does", () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const answers = [];
      for (const m of ["express", "fast"] as const) {
        const agent = await ca.seedAgent();
        const extra = c.prepare ? await c.prepare(agent) : undefined;
        const o = await observe(m, c.req({ agent, extra }));
        expect(o.took, `${m} mode`).toBe(m === "fast" && c.fast ? "fast" : "express");
        answers.push(normalise(o, c, agent.agentId));
      }
      const [viaExpress, viaFast] = answers;
      expect(viaFast).toEqual(viaExpress);
      // A refusal is in the audit log once, with the problem's code, whichever layer refused
      // (authority/ or the HTTP layer, server/refusals.ts); a grant writes no deny.
      const denies = viaFast!.audit.filter((e: { decision: string }) => e.decision === "deny");
      if (viaFast!.status >= 400) {
        expect(denies).toHaveLength(1);
        expect(denies[0].code).toBe((viaFast!.body as { code: string }).code);
      } else expect(denies).toHaveLength(0);
      // Every answer carries the app's headers and a request log line.
      expect(viaFast!.headers["cache-control"]).toBe("no-store");
      expect(viaFast!.logs.filter((l) => l.msg === "request")).toHaveLength(1);
    });
  }

  it("took the valid requests with their bodies (not trivially equal answers)", async () => {
    const agent = await ca.seedAgent();
    mode = "fast";
    const { body } = await validIssuanceBody(agent);
    const res = await send({
      path: `/v1/agents/${agent.agentId}/certificates`,
      headers: JSON_CT,
      body: body!,
    });
    mode = "express";
    expect(res.status).toBe(201);
    const out = JSON.parse(res.body) as { certificate: string; bundle: string; chain: string[] };
    expect(out.certificate).toMatch(PEM);
    expect(out.chain.length).toBeGreaterThan(0);
    expect(out.bundle).toContain(ca.rootPem.trim().split("\n")[1]);
  });
});
