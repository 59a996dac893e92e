import { describe, expect, it } from "vitest";
import { canonicalJson } from "../../src/audit/canonical.js";
import { isMayflyError } from "../../src/errors/index.js";

function rejection(v: unknown): { code: string; field: string | undefined } {
  try {
    canonicalJson(v);
  } catch (e) {
    if (!isMayflyError(e)) throw e;
    return { code: e.code, field: e.field };
  }
  throw new Error("expected canonicalJson to refuse");
}

describe("canonicalJson (RFC 8785 style)", () => {
  it("sorts keys, drops whitespace, keeps array order", () => {
    expect(canonicalJson({ b: 1, a: [3, 1, 2], "": { z: null, y: false } })).toBe(
      '{"":{"y":false,"z":null},"a":[3,1,2],"b":1}',
    );
    expect(canonicalJson([])).toBe("[]");
    expect(canonicalJson({})).toBe("{}");
  });

  it("sorts keys by UTF-16 code units, as RFC 8785 §3.2.3 does", () => {
    const input = {
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control",
      "\u00f6": "Latin Small Letter O With Diaeresis",
    };
    const keys = Object.keys(JSON.parse(canonicalJson(input)) as object);
    // Parsing reorders "1" (an array index) first, so compare the encoded order instead.
    const order = [...canonicalJson(input).matchAll(/"([^"]*)":"/g)].map((m) => m[1]);
    expect(order).toEqual(["\\r", "1", "\u0080", "\u00f6", "\u20ac", "\ud83d\ude00", "\ufb33"]);
    expect(keys).toHaveLength(7);
  });

  it("matches the RFC 8785 §3.2.2 example byte for byte", () => {
    const input = JSON.parse(
      '{"numbers":[333333333.33333329,1E30,4.50,2e-3,0.000000000000000000000000001],' +
        '"string":"\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/","literals":[null,true,false]}',
    );
    expect(canonicalJson(input)).toBe(
      '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],' +
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
    );
  });

  it("serialises numbers as ECMAScript does", () => {
    const cases: [number, string][] = [
      [0, "0"],
      [-0, "0"],
      [1e21, "1e+21"],
      [1e-7, "1e-7"],
      [0.000001, "0.000001"],
      [5e-324, "5e-324"],
      [1.7976931348623157e308, "1.7976931348623157e+308"],
      [9007199254740992, "9007199254740992"],
      [295147905179352830000, "295147905179352830000"],
      [-1.5, "-1.5"],
    ];
    for (const [n, s] of cases) expect(canonicalJson(n)).toBe(s);
  });

  it("keeps non-ASCII text literal and escapes only what JSON requires", () => {
    expect(canonicalJson("héllo ✓ 𝄞 \u2028")).toBe('"héllo ✓ 𝄞 \u2028"');
    expect(canonicalJson("\u0000\u001f\t\b")).toBe('"\\u0000\\u001f\\t\\b"');
    expect(canonicalJson({ ключ: "значение" })).toBe('{"ключ":"значение"}');
  });

  it("accepts null-prototype objects and shared (acyclic) sub-objects", () => {
    const o = Object.create(null) as Record<string, unknown>;
    o.x = 1;
    const shared = { k: 1 };
    expect(canonicalJson({ o, a: shared, b: shared })).toBe('{"a":{"k":1},"b":{"k":1},"o":{"x":1}}');
  });

  it("refuses values whose JSON encoding is not fixed, naming the path", () => {
    class Thing {
      x = 1;
    }
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic.self = cyclic;
    const cases: [unknown, string][] = [
      [{ n: Number.NaN }, "$.n"],
      [{ n: Number.POSITIVE_INFINITY }, "$.n"],
      [[1, Number.NEGATIVE_INFINITY], "$[1]"],
      [{ u: undefined }, "$.u"],
      [[undefined], "$[0]"],
      [{ f: () => 1 }, "$.f"],
      [{ s: Symbol("x") }, "$.s"],
      [{ b: 10n }, "$.b"],
      [{ d: new Date(0) }, "$.d"],
      [{ buf: Buffer.from("hi") }, "$.buf"],
      [{ u8: new Uint8Array(2) }, "$.u8"],
      [{ m: new Map() }, "$.m"],
      [{ t: new Thing() }, "$.t"],
      [{ deep: [{ x: [Number.NaN] }] }, "$.deep[0].x[0]"],
      [cyclic, "$.self"],
      [{ s: "bad \ud800 surrogate" }, "$.s"],
      [{ s: "\udc00" }, "$.s"],
      [{ "\ud800": 1 }, "$.\ud800"],
      [{ [Symbol("k")]: 1 }, "$"],
      // biome-ignore lint/suspicious/noSparseArray: the hole is the point
      [[1, , 3], "$[1]"],
    ];
    for (const [v, field] of cases) expect(rejection(v)).toEqual({ code: "internal.error", field });
  });
});
