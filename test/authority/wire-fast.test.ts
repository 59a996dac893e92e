import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  issueRequestFast,
  issueRequestSchema,
  parseBody,
  parseIssueRequest,
} from "../../src/authority/wire.js";
import { isMayflyError } from "../../src/errors/index.js";

// parseIssueRequest answers without zod for the bodies clients send and leaves the rest to
// zod. Against parseBody(issueRequestSchema) on generated bodies, valid and broken: the same
// output (Buffers, members, member order, prototypes) or the same refusal (code, field,
// detail); and the bodies clients send do take the hand-written path.

type Outcome =
  | { ok: unknown; keys: string[][]; protos: unknown[] }
  | { code: string; field?: string; detail: string };

function outcome(parse: (b: unknown) => unknown, body: unknown): Outcome {
  try {
    const out = parse(body) as Record<string, unknown> & { attestation: object };
    return {
      ok: out,
      keys: [Object.keys(out), Object.keys(out.attestation)],
      protos: [Object.getPrototypeOf(out), Object.getPrototypeOf(out.attestation)],
    };
  } catch (e) {
    if (!isMayflyError(e)) throw e;
    return { code: e.code, field: e.field, detail: e.detail };
  }
}

const b64 = (min: number, max: number) =>
  fc.uint8Array({ minLength: min, maxLength: max }).map((u) => Buffer.from(u).toString("base64url"));

const jsonish = fc.jsonValue({ maxDepth: 2 });

const attestation = fc
  .record({
    format: fc.string({ minLength: 1, maxLength: 64 }),
    // No own "__proto__" member here: that body is left to zod (see broken below).
    extra: fc.dictionary(
      fc.string({ maxLength: 12 }).filter((k) => k !== "__proto__"),
      jsonish,
      { maxKeys: 4 },
    ),
    formatFirst: fc.boolean(),
  })
  .map(({ format, extra, formatFirst }) => {
    const { format: _f, ...rest } = extra;
    return formatFirst ? { format, ...rest } : { ...rest, format };
  });

/** What an agent sends: valid, members in any order, lifetimeSeconds or not. */
const valid = fc
  .record({
    csr: b64(1, 700),
    nonce: b64(32, 32),
    attestation,
    lifetimeSeconds: fc.option(fc.integer({ min: 1, max: 2 ** 31 }), { nil: undefined }),
    order: fc.integer({ min: 0, max: 23 }),
  })
  .map(({ order, lifetimeSeconds, ...m }) => {
    const entries = Object.entries(m);
    // One of the 6 orders of the three required members.
    const perm = [
      [0, 1, 2],
      [0, 2, 1],
      [1, 0, 2],
      [1, 2, 0],
      [2, 0, 1],
      [2, 1, 0],
    ][order % 6]!;
    const body: Record<string, unknown> = Object.fromEntries(perm.map((i) => entries[i]!));
    if (lifetimeSeconds !== undefined) body.lifetimeSeconds = lifetimeSeconds;
    return body;
  });

/** One thing broken (or merely unusual) in a valid body. */
const broken = fc
  .tuple(
    valid,
    fc.constantFrom(
      "csr-type",
      "csr-empty",
      "csr-big",
      "csr-noncanonical",
      "csr-padding",
      "csr-chars",
      "nonce-short",
      "nonce-long",
      "nonce-missing",
      "att-missing",
      "att-array",
      "att-null",
      "format-empty",
      "format-long",
      "format-number",
      "life-zero",
      "life-float",
      "life-string",
      "life-huge",
      "life-null",
      "extra-key",
      "proto-key",
      "att-proto-key",
      "body-array",
      "body-null",
      "body-string",
    ),
    jsonish,
  )
  .map(([body, how, junk]) => {
    const b: Record<string, unknown> = { ...body };
    const att = b.attestation as Record<string, unknown>;
    switch (how) {
      case "csr-type":
        b.csr = junk;
        break;
      case "csr-empty":
        b.csr = "";
        break;
      case "csr-big":
        b.csr = Buffer.alloc(16_384 + (typeof junk === "number" ? 1 : 0), 7).toString("base64url");
        break;
      case "csr-noncanonical":
        // "AB" decodes to one byte whose re-encoding is "AA" (trailing bits set); a lone
        // trailing character decodes to nothing.
        b.csr = typeof junk === "number" ? "AB" : `${b.csr as string}A`;
        break;
      case "csr-padding":
        b.csr = `${b.csr as string}=`;
        break;
      case "csr-chars":
        b.csr = `${b.csr as string}+/`;
        break;
      case "nonce-short":
        b.nonce = Buffer.alloc(31).toString("base64url");
        break;
      case "nonce-long":
        b.nonce = Buffer.alloc(33).toString("base64url");
        break;
      case "nonce-missing":
        delete b.nonce;
        break;
      case "att-missing":
        delete b.attestation;
        break;
      case "att-array":
        b.attestation = [att];
        break;
      case "att-null":
        b.attestation = null;
        break;
      case "format-empty":
        b.attestation = { ...att, format: "" };
        break;
      case "format-long":
        b.attestation = { ...att, format: "f".repeat(65) };
        break;
      case "format-number":
        b.attestation = { ...att, format: 1 };
        break;
      case "life-zero":
        b.lifetimeSeconds = 0;
        break;
      case "life-float":
        b.lifetimeSeconds = 1.5;
        break;
      case "life-string":
        b.lifetimeSeconds = "60";
        break;
      case "life-huge":
        b.lifetimeSeconds = 2 ** 60;
        break;
      case "life-null":
        b.lifetimeSeconds = null;
        break;
      case "extra-key":
        b.extra = junk;
        break;
      case "proto-key":
        return JSON.parse(`{"__proto__":${JSON.stringify(junk)},${JSON.stringify(b).slice(1)}`);
      case "att-proto-key":
        return JSON.parse(
          JSON.stringify(b).replace(
            '"attestation":{',
            () => `"attestation":{"__proto__":${JSON.stringify(junk)},`,
          ),
        );
      case "body-array":
        return [b];
      case "body-null":
        return null;
      case "body-string":
        return JSON.stringify(b);
    }
    return b;
  });

const viaZod = (b: unknown) => parseBody(issueRequestSchema, b);

describe("parseIssueRequest against zod", () => {
  it("valid bodies: the hand-written path takes them and gives zod's output", () => {
    fc.assert(
      fc.property(valid, (body) => {
        expect(issueRequestFast(body)).not.toBeNull();
        expect(outcome(parseIssueRequest, body)).toEqual(outcome(viaZod, body));
      }),
      { numRuns: 1500, seed: 20260107 },
    );
  });

  it("broken or unusual bodies: the same output or the same refusal", () => {
    fc.assert(
      fc.property(broken, (body) => {
        expect(outcome(parseIssueRequest, body)).toEqual(outcome(viaZod, body));
      }),
      { numRuns: 3000, seed: 20260108 },
    );
  });

  it("any JSON value: the same output or the same refusal", () => {
    fc.assert(
      fc.property(jsonish, (body) => {
        expect(outcome(parseIssueRequest, body)).toEqual(outcome(viaZod, body));
      }),
      { numRuns: 1000, seed: 20260109 },
    );
  });

  it("a few refusals spelled out (zod's words, the first issue's field)", () => {
    const nonce = Buffer.alloc(32).toString("base64url");
    const r = outcome(parseIssueRequest, {
      csr: "AB",
      nonce,
      attestation: { format: "x" },
      lifetimeSeconds: 0,
    });
    expect(r).toMatchObject({ code: "request.invalid", field: "csr" });
    expect((r as { detail: string }).detail).toContain("non-canonical base64url");
    expect((r as { detail: string }).detail).toContain("lifetimeSeconds");
    expect(
      outcome(parseIssueRequest, { csr: "AA", nonce, attestation: { format: "x" }, x: 1 }),
    ).toMatchObject({
      code: "request.invalid",
    });
  });
});
