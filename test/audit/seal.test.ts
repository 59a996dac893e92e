import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson, canonicalJsonCopy } from "../../src/audit/canonical.js";
import { auditHash, GENESIS_HASH, sealAuditEvent } from "../../src/audit/index.js";
import { isMayflyError } from "../../src/errors/index.js";
import type { AuditEventInput } from "../../src/store/types.js";

// sealAuditEvent encodes the event's data once and keeps, from the same walk, the copy it
// stores (it used to store JSON.parse(canonicalJson(data)) and encode that again). The
// guarantee to keep: what is stored is exactly what was hashed, and is JSON.parse of the
// canonical form; nothing is accepted that canonicalJson refuses.

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

// JSON values with awkward keys ("__proto__", array-index keys, astral and surrogate-pair
// text) and numbers JSON does not distinguish (-0).
const key = fc.oneof(
  fc.string(),
  fc.constantFrom("__proto__", "constructor", "0", "1", "10", "", "\u20ac", "\ud83d\ude00"),
);
const leaf = fc.oneof(
  fc.string({ unit: "grapheme" }),
  fc.string(),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
  fc.constant(-0),
  fc.boolean(),
  fc.constant(null),
);
const { json } = fc.letrec((tie) => ({
  json: fc.oneof({ depthSize: "small" }, leaf, tie("array"), tie("object")),
  array: fc.array(tie("json"), { maxLength: 5 }),
  object: fc.array(fc.tuple(key, tie("json")), { maxLength: 6 }).map((entries) => {
    const o: Record<string, unknown> = {};
    for (const [k, v] of entries)
      Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
    return o;
  }),
}));
const data = json.map((v) => ({ x: v, y: [v] }) as Record<string, unknown>);

/**
 * Structural identity: same prototypes, same own keys in the same order with data
 * descriptors alike, primitives Object.is-equal (so -0 and 0 differ). Not toStrictEqual,
 * which compares `.constructor` and so cannot handle a "constructor" key.
 */
function sameJson(a: unknown, b: unknown): boolean {
  if (typeof a !== "object" || a === null || typeof b !== "object" || b === null) return Object.is(a, b);
  if (Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  const ka = Reflect.ownKeys(a);
  const kb = Reflect.ownKeys(b);
  if (ka.length !== kb.length || ka.some((k, i) => k !== kb[i])) return false;
  return ka.every((k) => {
    const da = Object.getOwnPropertyDescriptor(a, k)!;
    const db = Object.getOwnPropertyDescriptor(b, k)!;
    return (
      da.enumerable === db.enumerable &&
      da.writable === db.writable &&
      da.configurable === db.configurable &&
      sameJson(da.value, db.value)
    );
  });
}

function input(d: Record<string, unknown>): AuditEventInput {
  return {
    type: "certificate.issue",
    decision: "allow",
    code: null,
    actor: "agent:a",
    subject: "agent:a",
    data: d,
  };
}

function outcome(f: () => unknown): { ok: true; v: unknown } | { ok: false; code: string; field?: string } {
  try {
    return { ok: true, v: f() };
  } catch (e) {
    if (!isMayflyError(e)) throw e;
    return { ok: false, code: e.code, field: e.field };
  }
}

describe("sealAuditEvent", () => {
  it("stores exactly what it hashed: the hash verifies and the data is JSON.parse(canonicalJson(data))", () => {
    fc.assert(
      fc.property(data, fc.boolean(), (d, first) => {
        const head = first ? null : { seq: 41, hash: Buffer.alloc(32, 7) };
        const e = sealAuditEvent(head, 1_700_000_000_000, input(d));
        expect(e.seq).toBe(first ? 1 : 42);
        expect(e.prevHash.equals(first ? GENESIS_HASH : Buffer.alloc(32, 7))).toBe(true);
        // auditHash encodes the stored event afresh, as verification does.
        expect(e.hash.equals(auditHash(e))).toBe(true);
        const parsed = JSON.parse(canonicalJson(d, "data")) as unknown;
        expect(sameJson(e.data, parsed)).toBe(true);
        // Same key order (what a store serialises), same prototypes, -0 gone.
        expect(JSON.stringify(e.data)).toBe(JSON.stringify(parsed));
        expect(canonicalJson(e.data)).toBe(canonicalJson(d));
      }),
      { numRuns: 500 },
    );
  });

  it("shares no object with the caller's data", () => {
    const d = { evidence: { akName: "00", list: [1, { a: "b" }] } };
    const e = sealAuditEvent(null, 1, input(d));
    d.evidence.akName = "ff";
    (d.evidence.list[1] as { a: string }).a = "changed";
    d.evidence.list.push(3);
    expect(e.data).toEqual({ evidence: { akName: "00", list: [1, { a: "b" }] } });
    expect(e.hash.equals(auditHash(e))).toBe(true);
  });

  it("keeps a __proto__ key as an own property, as JSON.parse does", () => {
    const d = JSON.parse('{"__proto__":{"polluted":true},"k":1}') as Record<string, unknown>;
    const e = sealAuditEvent(null, 1, input(d));
    expect(Object.getPrototypeOf(e.data)).toBe(Object.prototype);
    expect(Object.keys(e.data)).toEqual(["__proto__", "k"]);
    expect((e.data as { polluted?: boolean }).polluted).toBeUndefined();
    expect(e.hash.equals(auditHash(e))).toBe(true);
  });
});

class Thing {
  a = 1;
}

describe("canonicalJsonCopy", () => {
  const bad: [string, () => unknown][] = [
    ["undefined", () => undefined],
    ["NaN", () => Number.NaN],
    ["Infinity", () => Number.POSITIVE_INFINITY],
    ["BigInt", () => 1n],
    ["function", () => () => 1],
    ["symbol", () => Symbol("s")],
    ["Buffer", () => Buffer.from("ab")],
    ["Date", () => new Date(0)],
    ["Map", () => new Map()],
    ["class", () => new Thing()],
    ["lone surrogate", () => "a\ud800b"],
    ["lone surrogate key", () => ({ "\udc00": 1 })],
    ["symbol key", () => ({ [Symbol("k")]: 1 })],
    // biome-ignore lint/suspicious/noSparseArray: the case under test
    ["sparse array", () => [1, , 3]],
    [
      "cycle",
      () => {
        const o: Record<string, unknown> = {};
        o.self = { o };
        return o;
      },
    ],
  ];

  it("refuses what canonicalJson refuses, naming the same field", () => {
    fc.assert(
      fc.property(json, fc.nat(bad.length - 1), fc.nat(3), (v, b, where) => {
        const poison = bad[b]![1]();
        const d =
          where === 0
            ? { v, p: poison }
            : where === 1
              ? { v: [v, poison] }
              : where === 2
                ? { nest: { deeper: [{ poison }] }, v }
                : { v, ok: true };
        const ref = outcome(() => canonicalJson(d, "data"));
        const got = outcome(() => canonicalJsonCopy(d, "data").json);
        expect(got).toEqual(ref);
        expect(outcome(() => sealAuditEvent(null, 1, input(d)).hash)).toMatchObject(
          ref.ok ? { ok: true } : { ok: false, code: ref.code, field: ref.field },
        );
      }),
      { numRuns: 500 },
    );
  });

  it("detects lone surrogates exactly as the regex it replaced", () => {
    const units = fc.constantFrom("a", "\ud800", "\udbff", "\udc00", "\udfff", "\ud83d\ude00", "\u20ac", "");
    fc.assert(
      fc.property(fc.array(units, { maxLength: 8 }), (parts) => {
        const s = parts.join("");
        const refused = !outcome(() => canonicalJsonCopy({ [s]: s })).ok;
        expect(refused).toBe(LONE_SURROGATE.test(s));
      }),
      { numRuns: 2000 },
    );
  });
});
