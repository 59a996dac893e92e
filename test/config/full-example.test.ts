import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { isMap, isPair, isScalar, isSeq, type Pair, parseDocument, type YAMLMap } from "yaml";
import { parseConfigText, validateConfig } from "../../src/config/index.js";

const fullText = readFileSync(new URL("../../ca-config/mayfly.full.yaml", import.meta.url), "utf8");
const startText = readFileSync(new URL("../../ca-config/mayfly.yaml", import.meta.url), "utf8");

/** Dotted paths of every leaf of a plain object (arrays count as leaves). */
function leafPaths(v: unknown, prefix = ""): string[] {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    return Object.entries(v).flatMap(([k, x]) => leafPaths(x, prefix ? `${prefix}.${k}` : k));
  }
  return [prefix];
}

/** Every key path in the YAML document, with whether a comment sits on or before it. */
function documentedKeys(map: YAMLMap, prefix = "", out = new Map<string, boolean>()): Map<string, boolean> {
  for (const [index, item] of map.items.entries()) {
    if (!isPair(item)) continue;
    const pair = item as Pair;
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const path = prefix ? `${prefix}.${key}` : key;
    const k = pair.key as { commentBefore?: string | null; comment?: string | null } | null;
    const v = pair.value as { commentBefore?: string | null; comment?: string | null } | null;
    // The yaml library attaches a comment above a map's first key to the map itself.
    const mapComment = index === 0 ? (map as { commentBefore?: string | null }).commentBefore : null;
    const commented = Boolean(k?.commentBefore || k?.comment || v?.comment || v?.commentBefore || mapComment);
    out.set(path, commented);
    if (isMap(pair.value)) documentedKeys(pair.value, path, out);
  }
  return out;
}

describe("ca-config/mayfly.full.yaml", () => {
  it("is valid and equals the schema's defaults exactly", () => {
    const full = parseConfigText(fullText);
    const defaults = validateConfig({});
    expect(full.ok).toBe(true);
    expect(defaults.ok).toBe(true);
    if (full.ok && defaults.ok) expect(full.config).toEqual(defaults.config);
  });

  it("lists every key of the schema, each with a comment", () => {
    const defaults = validateConfig({});
    if (!defaults.ok) throw new Error("defaults invalid");
    const doc = parseDocument(fullText);
    if (!isMap(doc.contents)) throw new Error("not a map");
    const keys = documentedKeys(doc.contents);
    for (const path of leafPaths(defaults.config)) {
      expect(keys.has(path), `${path} is missing from mayfly.full.yaml`).toBe(true);
      expect(keys.get(path), `${path} has no comment in mayfly.full.yaml`).toBe(true);
    }
    for (const [path] of keys) {
      const isLeafOrSection = leafPaths(defaults.config).some((p) => p === path || p.startsWith(`${path}.`));
      expect(isLeafOrSection, `${path} in mayfly.full.yaml is not a schema key`).toBe(true);
    }
    expect(
      isSeq(doc.get("server", true) ? (doc.getIn(["server", "tlsDnsNames"], true) as unknown) : null),
    ).toBe(true);
  });

  it("the start configuration is valid", () => {
    expect(parseConfigText(startText).ok).toBe(true);
  });
});
