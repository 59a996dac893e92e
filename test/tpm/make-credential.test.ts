import { generateKeyPairSync, type KeyObject } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  decodeTpm2ToolsCredential,
  type EccPublic,
  encodeTpm2ToolsCredential,
  kdfe,
  keyParamsFromKeyObject,
  makeCredential,
  objectName,
  protectCredential,
  type RsaPublic,
  TPM_ALG,
  type TpmtPublic,
  unmarshalTpm2bPublic,
} from "../../src/tpm/index.js";
import { activateCredentialSoftware } from "./helpers/activate-credential.js";
import { expectTpmError } from "./helpers/expect-tpm-error.js";
import { EK_TYPES, fx, replayRandom } from "./helpers/fixtures.js";

interface Vector {
  ekPublic_tpm2b: string;
  ekName: string;
  objectName: string;
  credential: string;
  seed: string;
  ephemeralPrivate?: string;
  z?: string;
  symKey: string;
  hmacKey: string;
  encIdentity: string;
  outerHmac: string;
  credentialBlob_tpm2b: string;
  encryptedSecret_tpm2b: string;
}

const hex = (s: string) => Buffer.from(s, "hex");
const vector = (t: string) => JSON.parse(fx(`swtpm/cred/${t}.js.vector.json`).toString()) as Vector;

describe("MakeCredential against the vectors the real TPM accepted", () => {
  it.each(EK_TYPES)("%s: the vector's EK and AK are the fixtures' ones", (t) => {
    const v = vector(t);
    expect(hex(v.ekPublic_tpm2b).equals(fx(`swtpm/ek/${t}.pub`))).toBe(true);
    expect(hex(v.objectName).equals(objectName(unmarshalTpm2bPublic(fx(`swtpm/ak/${t}.pub`))))).toBe(true);
    expect(hex(v.ekName).equals(fx(`swtpm/ek/${t}.name`))).toBe(true);
    expect(hex(v.credential).equals(fx("swtpm/cred/secret.bin"))).toBe(true);
  });

  it.each(EK_TYPES)(
    "%s: symKey, hmacKey, encIdentity, outerHmac and the ID object match from the seed",
    (t) => {
      const v = vector(t);
      const ek = unmarshalTpm2bPublic(hex(v.ekPublic_tpm2b));
      const p = protectCredential(ek, hex(v.seed), hex(v.objectName), hex(v.credential));
      expect(p.symKey.toString("hex")).toBe(v.symKey);
      expect(p.hmacKey.toString("hex")).toBe(v.hmacKey);
      expect(p.encIdentity.toString("hex")).toBe(v.encIdentity);
      expect(p.outerHmac.toString("hex")).toBe(v.outerHmac);
      expect(p.credentialBlob.toString("hex")).toBe(v.credentialBlob_tpm2b);
    },
  );

  it("AES-256 and SHA-384 for the P-384 EK, AES-128 and SHA-256 for the others", () => {
    expect(hex(vector("ecc384").symKey).length).toBe(32);
    expect(hex(vector("ecc384").hmacKey).length).toBe(48);
    expect(hex(vector("rsa2048").symKey).length).toBe(16);
    expect(hex(vector("ecc256").hmacKey).length).toBe(32);
  });

  it.each(["ecc384", "ecc256"])("%s: the whole output is reproduced from the ephemeral key", (t) => {
    const v = vector(t);
    const ek = unmarshalTpm2bPublic(hex(v.ekPublic_tpm2b)) as EccPublic;
    const out = makeCredential(
      ek,
      hex(v.objectName),
      hex(v.credential),
      replayRandom(hex(v.ephemeralPrivate ?? "")),
    );
    expect(out.credentialBlob.toString("hex")).toBe(v.credentialBlob_tpm2b);
    expect(out.encryptedSecret.toString("hex")).toBe(v.encryptedSecret_tpm2b);
    const qx = out.encryptedSecret.subarray(4, 4 + ek.unique.x.length);
    const bits = hex(v.seed).length * 8;
    expect(kdfe(ek.nameAlg, hex(v.z ?? ""), "IDENTITY", qx, ek.unique.x, bits).toString("hex")).toBe(v.seed);
  });

  it("rsa2048: the seed comes from Random and the secret is a 256-byte OAEP block", () => {
    const v = vector("rsa2048");
    const ek = unmarshalTpm2bPublic(hex(v.ekPublic_tpm2b));
    const out = makeCredential(ek, hex(v.objectName), hex(v.credential), replayRandom(hex(v.seed)));
    expect(out.credentialBlob.toString("hex")).toBe(v.credentialBlob_tpm2b);
    expect(out.encryptedSecret.length).toBe(258);
    expect(out.encryptedSecret.readUInt16BE(0)).toBe(256);
  });

  it.each(EK_TYPES)("%s: tpm2-tools credential files decode and re-encode byte for byte", (t) => {
    for (const f of [`${t}.cred`, `${t}.js.cred`, `${t}.wrongname.cred`]) {
      const bytes = fx(`swtpm/cred/${f}`);
      expect(encodeTpm2ToolsCredential(decodeTpm2ToolsCredential(bytes)).equals(bytes)).toBe(true);
    }
    const v = vector(t);
    const js = decodeTpm2ToolsCredential(fx(`swtpm/cred/${t}.js.cred`));
    expect(js.credentialBlob.toString("hex")).toBe(v.credentialBlob_tpm2b);
    expect(js.encryptedSecret.toString("hex")).toBe(v.encryptedSecret_tpm2b);
  });

  it("tpm2-tools file sizes match the README table (336 / 196 / 148 bytes)", () => {
    const sizes = EK_TYPES.map((t) => {
      const v = vector(t);
      const ek = unmarshalTpm2bPublic(hex(v.ekPublic_tpm2b));
      const rnd = replayRandom(hex(v.ephemeralPrivate ?? v.seed));
      return encodeTpm2ToolsCredential(makeCredential(ek, hex(v.objectName), hex(v.credential), rnd)).length;
    });
    expect(sizes).toEqual([336, 196, 148]);
  });
});

// EK-like public areas around keys whose private half the test holds.
function ekTemplate(key: KeyObject, nameAlg: number, aesBits: number): TpmtPublic {
  const params = keyParamsFromKeyObject(key);
  const common = {
    nameAlg,
    objectAttributes: 0x000300b2,
    authPolicy: Buffer.alloc(0),
    symmetric: { algorithm: TPM_ALG.AES, keyBits: aesBits, mode: TPM_ALG.CFB },
    scheme: null,
  };
  return params.type === TPM_ALG.RSA
    ? ({ ...common, ...params } as RsaPublic)
    : ({ ...common, ...params, kdf: null } as EccPublic);
}

const GENERATED: Array<[string, () => { privateKey: KeyObject; publicKey: KeyObject }, number, number]> = [
  [
    "RSA-2048 / SHA-256 / AES-128",
    () => generateKeyPairSync("rsa", { modulusLength: 2048 }),
    TPM_ALG.SHA256,
    128,
  ],
  [
    "P-256 / SHA-256 / AES-128",
    () => generateKeyPairSync("ec", { namedCurve: "P-256" }),
    TPM_ALG.SHA256,
    128,
  ],
  [
    "P-384 / SHA-384 / AES-256",
    () => generateKeyPairSync("ec", { namedCurve: "P-384" }),
    TPM_ALG.SHA384,
    256,
  ],
];

describe("MakeCredential -> software ActivateCredential", () => {
  const akName = objectName(unmarshalTpm2bPublic(fx("swtpm/ak/ecc256.pub")));
  const random = { bytes: (n: number) => Buffer.alloc(n, 0x5a) };

  it.each(GENERATED)(
    "%s: the secret comes back; another Name fails integrity",
    (_, gen, nameAlg, aesBits) => {
      const { privateKey, publicKey } = gen();
      const ek = ekTemplate(publicKey, nameAlg, aesBits);
      const secret = Buffer.alloc(32, 7);
      const out = makeCredential(ek, akName, secret, random);
      expect(
        activateCredentialSoftware(ek, privateKey, akName, out.credentialBlob, out.encryptedSecret),
      ).toEqual(secret);
      const other = objectName(unmarshalTpm2bPublic(fx("swtpm/ak/rsa2048.pub")));
      expect(() =>
        activateCredentialSoftware(ek, privateKey, other, out.credentialBlob, out.encryptedSecret),
      ).toThrow("integrity");
    },
  );
});

describe("MakeCredential refuses what the TPM would refuse", () => {
  const ek = unmarshalTpm2bPublic(fx("swtpm/ek/ecc256.pub")) as EccPublic;
  const name = fx("swtpm/ak/ecc256.name");
  const rnd = { bytes: (n: number) => Buffer.alloc(n, 1) };

  it("a credential longer than the EK's nameAlg digest, or empty", () => {
    expectTpmError(() => makeCredential(ek, name, Buffer.alloc(33), rnd), "tpm.malformed", "credential");
    expectTpmError(() => makeCredential(ek, name, Buffer.alloc(0), rnd), "tpm.malformed", "credential");
  });

  it("an objectName that is a handle or has the wrong size", () => {
    expectTpmError(
      () => makeCredential(ek, Buffer.from("81010002", "hex"), Buffer.alloc(32), rnd),
      "tpm.malformed",
      "objectName",
    );
    expectTpmError(
      () => makeCredential(ek, name.subarray(0, 33), Buffer.alloc(32), rnd),
      "tpm.malformed",
      "objectName.size",
    );
  });

  it("an EK that is not a restricted decryption key, or has no AES-CFB", () => {
    const signer = unmarshalTpm2bPublic(fx("swtpm/ak/ecc256.pub"));
    expectTpmError(
      () => makeCredential(signer, name, Buffer.alloc(32), rnd),
      "tpm.key_invalid",
      "TPMT_PUBLIC.objectAttributes",
    );
    const noSym = { ...ek, symmetric: null };
    expectTpmError(() => makeCredential(noSym, name, Buffer.alloc(32), rnd), "tpm.key_invalid", /symmetric/);
    const cbc = { ...ek, symmetric: { algorithm: TPM_ALG.AES, keyBits: 128, mode: TPM_ALG.CBC } };
    expectTpmError(
      () => makeCredential(cbc, name, Buffer.alloc(32), rnd),
      "tpm.unsupported",
      /symmetric\.mode/,
    );
  });

  it("an EK point that is not on the curve (TPM_RC_KEY)", () => {
    const y = Buffer.from(ek.unique.y);
    y[31]! ^= 1;
    const bad: EccPublic = { ...ek, unique: { x: ek.unique.x, y } };
    expectTpmError(() => makeCredential(bad, name, Buffer.alloc(32), rnd), "tpm.key_invalid", /unique\.ecc/);
  });

  it("a Random that never yields a valid scalar is an internal error, not a loop", () => {
    const zero = { bytes: (n: number) => Buffer.alloc(n) };
    expect(() => makeCredential(ek, name, Buffer.alloc(32), zero)).toThrow(/scalar/);
  });
});
