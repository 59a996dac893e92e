import { constants, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { configSchema, type Profile } from "../../../src/config/schema.js";
import { bindingDigest } from "../../../src/evidence/binding.js";
import type { EvidenceContext } from "../../../src/evidence/format.js";
import { ManualClock } from "../../../src/runtime/clock.js";
import type { Agent, Device } from "../../../src/store/types.js";
import {
  hierarchyQualifiedName,
  keyParamsFromKeyObject,
  marshalAttest,
  marshalSignature,
  marshalTpm2bPublic,
  objectName,
  type PcrSelection,
  qualifiedName,
  TPM_ALG,
  TPM_GENERATED_VALUE,
  TPM_RH,
  TPM_ST,
  TPMA_OBJECT,
  type TpmsAttest,
  type TpmtPublic,
  type TpmtSignature,
} from "../../../src/tpm/index.js";

// TEST ONLY: a software "TPM" that signs TPMS_ATTEST structures with keys whose private half
// the test holds, so nonce-bound evidence can be made for any challenge. The CA side is the
// real code; only the signer is simulated. Real-TPM bytes are tested from the swtpm fixtures.

export type KeyKind = "p256" | "p384" | "rsa2048";

export interface SimKey {
  readonly pub: TpmtPublic;
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly spki: Buffer;
  readonly tpm2b: Buffer;
  readonly name: Buffer;
  /**
   * The QN this key signs TPMS_ATTEST structures as (qualifiedSigner), when it is known
   * where the key lives: an AK activated under a simulated EK carries QN(EK -> AK), as a
   * real agent's does. Without it, simQualifiedName(name).
   */
  readonly qualifiedName?: Buffer;
}

const A = TPMA_OBJECT;
/** tpm2_createak: fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign. */
export const AK_ATTRS =
  A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.restricted | A.sign;
/** The certified key: fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign. */
export const KEY_ATTRS = A.fixedTPM | A.fixedParent | A.sensitiveDataOrigin | A.userWithAuth | A.sign;

export function generate(kind: KeyKind): { privateKey: KeyObject; publicKey: KeyObject } {
  if (kind === "rsa2048") return generateKeyPairSync("rsa", { modulusLength: 2048 });
  return generateKeyPairSync("ec", { namedCurve: kind === "p256" ? "prime256v1" : "secp384r1" });
}

/** A TPM public area around a software key; `over` replaces any member. */
export function simKey(
  kind: KeyKind,
  attrs: number,
  over: Partial<Record<keyof TpmtPublic, unknown>> = {},
  keys = generate(kind),
): SimKey {
  const params = keyParamsFromKeyObject(keys.publicKey);
  const scheme =
    kind === "rsa2048"
      ? { scheme: TPM_ALG.RSASSA, hashAlg: TPM_ALG.SHA256 }
      : { scheme: TPM_ALG.ECDSA, hashAlg: TPM_ALG.SHA256 };
  const base = {
    nameAlg: TPM_ALG.SHA256,
    objectAttributes: attrs,
    authPolicy: Buffer.alloc(0),
    symmetric: null,
    scheme,
    ...(params.type === TPM_ALG.ECC ? { kdf: null } : {}),
    ...params,
  };
  const pub = { ...base, ...over } as TpmtPublic;
  return {
    pub,
    privateKey: keys.privateKey,
    publicKey: keys.publicKey,
    spki: keys.publicKey.export({ type: "spki", format: "der" }),
    tpm2b: marshalTpm2bPublic(pub),
    name: objectName(pub),
  };
}

/** Signs `bytes` as a TPM would with `key` (its scheme, or RSASSA/ECDSA with `hash`). */
export function tpmSign(key: SimKey, bytes: Buffer, hash: "sha1" | "sha256" | "sha384" = "sha256"): Buffer {
  const hashAlg = { sha1: TPM_ALG.SHA1, sha256: TPM_ALG.SHA256, sha384: TPM_ALG.SHA384 }[hash];
  let sig: TpmtSignature;
  if (key.pub.type === TPM_ALG.ECC) {
    const raw = sign(hash, bytes, { key: key.privateKey, dsaEncoding: "ieee-p1363" });
    const half = raw.length / 2;
    sig = {
      sigAlg: TPM_ALG.ECDSA,
      hashAlg,
      signatureR: raw.subarray(0, half),
      signatureS: raw.subarray(half),
    };
  } else {
    const raw = sign(hash, bytes, { key: key.privateKey, padding: constants.RSA_PKCS1_PADDING });
    sig = { sigAlg: TPM_ALG.RSASSA, hashAlg, sig: raw };
  }
  return marshalSignature(sig);
}

/** The AK's QN as if it were a child of an owner-hierarchy primary with this Name. */
export function simQualifiedName(name: Buffer): Buffer {
  const parent = qualifiedName(
    hierarchyQualifiedName(TPM_RH.OWNER),
    Buffer.concat([Buffer.from([0, 0x0b]), Buffer.alloc(32, 7)]),
  );
  return qualifiedName(parent, name);
}

/** What `ak` names itself as in qualifiedSigner. */
export function signerQualifiedName(ak: SimKey): Buffer {
  return ak.qualifiedName ?? simQualifiedName(ak.name);
}

const CLOCK = { clock: 123_456n, resetCount: 5, restartCount: 2, safe: true };
export const FIRMWARE = 0x2019102300163636n;

export function certifyAttest(ak: SimKey, key: SimKey, extraData: Buffer): TpmsAttest {
  return {
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST.ATTEST_CERTIFY,
    qualifiedSigner: signerQualifiedName(ak),
    extraData,
    clockInfo: CLOCK,
    firmwareVersion: FIRMWARE,
    attested: { name: key.name, qualifiedName: simQualifiedName(key.name) },
  };
}

export function quoteAttest(
  ak: SimKey,
  extraData: Buffer,
  pcrSelect: PcrSelection[],
  pcrDigest: Buffer,
): TpmsAttest {
  return {
    magic: TPM_GENERATED_VALUE,
    type: TPM_ST.ATTEST_QUOTE,
    qualifiedSigner: signerQualifiedName(ak),
    extraData,
    clockInfo: CLOCK,
    firmwareVersion: FIRMWARE,
    attested: { pcrSelect, pcrDigest },
  };
}

export const b64 = (b: Buffer): string => b.toString("base64url");

/** Certify evidence as the protocol carries it; `edit` may change the attest or its bytes before signing. */
export function certifyAttestation(
  ak: SimKey,
  key: SimKey,
  extraData: Buffer,
  o: {
    edit?: (a: TpmsAttest) => TpmsAttest;
    bytes?: (b: Buffer) => Buffer;
    hash?: "sha1" | "sha256";
    signer?: SimKey;
  } = {},
): Record<string, unknown> {
  const a = (o.edit ?? ((x) => x))(certifyAttest(ak, key, extraData));
  const bytes = (o.bytes ?? ((b) => b))(marshalAttest(a));
  return {
    format: "tpm-certify",
    keyPublic: b64(key.tpm2b),
    certifyInfo: b64(bytes),
    signature: b64(tpmSign(o.signer ?? ak, bytes, o.hash)),
  };
}

export function device(ak: SimKey | { tpm2b: Buffer; name: Buffer } | null, id = "dev-1"): Device {
  return {
    id,
    kind: "tpm",
    status: "active",
    ekPubHash: Buffer.alloc(32, 1),
    ekCertIssuer: null,
    akName: ak?.name ?? null,
    akPublic: ak?.tpm2b ?? null,
    serial: null,
    mdmId: null,
    managed: false,
    compliant: false,
    assignedOwnerId: null,
    createdAt: 0,
    updatedAt: 0,
  };
}

export const NOW = Date.UTC(2027, 0, 1);

export function profile(extra: Record<string, unknown> = {}): Profile {
  return { ...configSchema.parse({}).profiles.default!, ...extra } as Profile;
}

const AGENT: Agent = {
  id: "agent-1",
  name: "agent",
  ownerId: "owner-1",
  deviceId: "dev-1",
  spiffeId: "spiffe://mayfly.internal/agent/agent-1",
  purpose: "test",
  profile: "default",
  status: "active",
  expiresAt: NOW + 86_400_000,
  lastIssuedAt: null,
  createdAt: 0,
  updatedAt: 0,
};

export function context(
  dev: Device,
  csrKey: { spki: Buffer; publicKey: KeyObject },
  o: { nonce?: Buffer; profile?: Profile } = {},
): EvidenceContext {
  return {
    agent: AGENT,
    device: dev,
    nonce: o.nonce ?? NONCE,
    csrKey,
    profile: o.profile ?? profile(),
    clock: new ManualClock(NOW),
  };
}

export const NONCE = randomBytes(32);

export function binding(spki: Buffer, nonce = NONCE): Buffer {
  return bindingDigest(nonce, spki);
}
