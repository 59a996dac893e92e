import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isMayflyError } from "../../src/errors/index.js";
import {
  decodeTpm2ToolsCredential,
  encodeTpm2ToolsCredential,
  marshalAttest,
  marshalPcrSelection,
  marshalSignature,
  marshalTpm2bCreationData,
  marshalTpm2bPublic,
  marshalTpmtPublic,
  unmarshalAttest,
  unmarshalPcrSelection,
  unmarshalSignature,
  unmarshalTpm2bCreationData,
  unmarshalTpm2bPublic,
  unmarshalTpmtPublic,
} from "../../src/tpm/index.js";
import { fx } from "./helpers/fixtures.js";

// Property: on any input a parser either throws a MayflyError with a tpm.* code and a field,
// or returns a value that marshals back to exactly the input (so nothing is lost or invented).

interface Codec {
  parse(b: Buffer): unknown;
  marshal(v: never): Buffer;
  seeds: string[];
}

const CODECS: Record<string, Codec> = {
  TPM2B_PUBLIC: {
    parse: unmarshalTpm2bPublic,
    marshal: marshalTpm2bPublic,
    seeds: ["ek/rsa2048.pub", "ek/ecc384.pub", "ak/ecc256.pub", "keys/rsa.pub"],
  },
  TPMT_PUBLIC: {
    parse: unmarshalTpmtPublic,
    marshal: marshalTpmtPublic,
    seeds: ["ak/rsa2048.tpmt", "ek/ecc256.tpmt"],
  },
  TPMS_ATTEST: {
    parse: unmarshalAttest,
    marshal: marshalAttest,
    seeds: ["certify/rsa-key.by-ecc-ak.attest", "certify/ecc-key.creation.attest", "quote/rsa2048.msg"],
  },
  TPMT_SIGNATURE: {
    parse: unmarshalSignature,
    marshal: marshalSignature,
    seeds: ["quote/ecc384.sig", "quote/rsa2048.sig"],
  },
  TPML_PCR_SELECTION: { parse: unmarshalPcrSelection, marshal: marshalPcrSelection, seeds: [] },
  TPM2B_CREATION_DATA: {
    parse: unmarshalTpm2bCreationData,
    marshal: marshalTpm2bCreationData,
    seeds: ["keys/rsa.cdata"],
  },
  credential: {
    parse: decodeTpm2ToolsCredential,
    marshal: encodeTpm2ToolsCredential,
    seeds: ["cred/rsa2048.cred", "cred/ecc384.cred"],
  },
};

function check(codec: Codec, input: Buffer): void {
  let value: unknown;
  try {
    value = codec.parse(input);
  } catch (e) {
    if (!isMayflyError(e)) throw e;
    expect(e.code).toMatch(/^tpm\.(malformed|unsupported)$/);
    expect(e.field).toBeTruthy();
    return;
  }
  expect(codec.marshal(value as never).equals(input)).toBe(true);
}

type Mutation =
  | { kind: "truncate"; at: number }
  | { kind: "extend"; tail: Uint8Array }
  | { kind: "flip"; at: number; bit: number }
  | { kind: "u16"; at: number; value: number };

const mutation: fc.Arbitrary<Mutation[]> = fc.array(
  fc.oneof(
    fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
    fc.record({ kind: fc.constant("extend" as const), tail: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({
      kind: fc.constant("u16" as const),
      at: fc.nat(),
      value: fc.integer({ min: 0, max: 0xffff }),
    }),
  ),
  { minLength: 1, maxLength: 4 },
);

function apply(seed: Buffer, ms: Mutation[]): Buffer {
  let b = Buffer.from(seed);
  for (const m of ms) {
    if (b.length === 0 && m.kind !== "extend") continue;
    if (m.kind === "truncate") b = b.subarray(0, m.at % b.length);
    else if (m.kind === "extend") b = Buffer.concat([b, m.tail]);
    else if (m.kind === "flip") b[m.at % b.length]! ^= 1 << m.bit;
    else if (b.length >= 2) b.writeUInt16BE(m.value, m.at % (b.length - 1));
  }
  return b;
}

describe("parsers under mutation (fast-check)", () => {
  for (const [name, codec] of Object.entries(CODECS)) {
    if (codec.seeds.length > 0) {
      it(`${name}: truncated, extended and bit-flipped artefacts`, () => {
        const seeds = codec.seeds.map((s) => fx(`swtpm/${s}`));
        fc.assert(
          fc.property(fc.constantFrom(...seeds), mutation, (seed, ms) => check(codec, apply(seed, ms))),
          { numRuns: 400 },
        );
      });
    }
    it(`${name}: arbitrary bytes`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (b) => check(codec, Buffer.from(b))),
        { numRuns: 300 },
      );
    });
  }
});
