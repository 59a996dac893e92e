import { describe, expect, it } from "vitest";
import { isMayflyError } from "../../src/errors/index.js";
import { deviceSigner } from "../../src/evidence/tpm-common.js";
import { AK_ATTRS, device, generate, simKey } from "./helpers/tpm-sim.js";

// deviceSigner caches the parsed AK and its KeyObject by the exact stored bytes. A hit must
// need the very same bytes: an AK that differs anywhere is parsed afresh, and the stored
// Name is checked against the (cached) computed one on every call.

function codeOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return isMayflyError(e) ? e.code : String(e);
  }
  return undefined;
}

describe("deviceSigner cache", () => {
  it("hits on the same bytes in a fresh Buffer, and only on those", () => {
    const keys = generate("p256");
    const a = simKey("p256", AK_ATTRS, {}, keys);
    // The same key pair, one bit of authPolicy apart: different public area, different Name.
    const b = simKey("p256", AK_ATTRS, { authPolicy: Buffer.alloc(32, 1) }, keys);
    const first = deviceSigner(device(a));
    const again = deviceSigner(device({ tpm2b: Buffer.from(a.tpm2b), name: Buffer.from(a.name) }));
    expect(again.key).toBe(first.key);
    const other = deviceSigner(device(b));
    expect(other.key).not.toBe(first.key);
    expect(other.name.equals(b.name)).toBe(true);
    expect(first.name.equals(a.name)).toBe(true);
  });

  it("checks the stored Name against the cached one on every call", () => {
    const a = simKey("p256", AK_ATTRS);
    deviceSigner(device(a));
    const wrong = Buffer.from(a.name);
    wrong[wrong.length - 1]! ^= 1;
    expect(codeOf(() => deviceSigner(device({ tpm2b: a.tpm2b, name: wrong })))).toBe("device.ak_invalid");
  });

  it("never caches an AK that does not parse", () => {
    const a = simKey("p256", AK_ATTRS);
    const bad = Buffer.concat([a.tpm2b, Buffer.alloc(1)]);
    expect(codeOf(() => deviceSigner(device({ tpm2b: bad, name: a.name })))).toBe("device.ak_invalid");
    expect(codeOf(() => deviceSigner(device({ tpm2b: bad, name: a.name })))).toBe("device.ak_invalid");
  });
});
