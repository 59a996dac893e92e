import { createHash, type KeyObject, verify } from "node:crypto";
import { MayflyError } from "../errors/index.js";
import {
  objectName,
  publicSpkiDer,
  TPM_ALG,
  TPM_ECC_CURVE,
  TPMA_OBJECT,
  type TpmtPublic,
  unmarshalTpm2bPublic,
} from "../tpm/index.js";
import {
  canSignCertificates,
  OID_TCG_EK_CERTIFICATE,
  type ParsedCertificate,
  parseCertificate,
  type TpmDeviceAttributes,
} from "./ek-certificate.js";
import type { EkTrustStore } from "./ek-trust-store.js";

export { EK_CERT_MAX_BYTES, type TpmDeviceAttributes } from "./ek-certificate.js";
export { EkTrustStore, loadEkTrustStore } from "./ek-trust-store.js";

// Is this EK a real TPM's? Either a TPM manufacturer vouches for it (an EK certificate
// that chains to a configured root and certifies exactly this public area), or an operator
// or MDM registered SHA-256 of its SubjectPublicKeyInfo. Nothing else: no root and no
// registration means refusal, never "skip the check".
//
// Validity: the EK certificate itself must be within its validity at `now` (a 9999
// notAfter never expires). CA certificates on the path are NOT checked for expiry: vendor
// CAs routinely expire while the TPMs they certified stay in service (Infineon's 2005-2025
// EK CA), the CA's expiry says nothing about whether the EK is genuine, and activation is a
// one-time act per device and AK. Their signatures, CA flag, keyCertSign and path length
// are checked. Revocation is not checked (no EK CA publishes usable CRLs for this).

/** How many certificates a path may have, leaf and root included. */
const MAX_PATH = 6;
const MAX_EK_CHAIN = 8;

/** Certificate signature algorithms accepted on EK paths. SHA-1 is refused. */
const SIGNATURE_ALGORITHMS: Readonly<Record<string, { kind: "rsa" | "ec"; hash: string }>> = {
  "1.2.840.113549.1.1.11": { kind: "rsa", hash: "sha256" },
  "1.2.840.113549.1.1.12": { kind: "rsa", hash: "sha384" },
  "1.2.840.113549.1.1.13": { kind: "rsa", hash: "sha512" },
  "1.2.840.10045.4.3.2": { kind: "ec", hash: "sha256" },
  "1.2.840.10045.4.3.3": { kind: "ec", hash: "sha384" },
  "1.2.840.10045.4.3.4": { kind: "ec", hash: "sha512" },
};
const SHA1_SIGNATURES: ReadonlySet<string> = new Set(["1.2.840.113549.1.1.5", "1.2.840.10045.4.1"]);
const ISSUER_CURVES: ReadonlySet<string> = new Set(["prime256v1", "secp384r1", "secp521r1"]);

export interface EkTrustInput {
  /** TPM2B_PUBLIC of the EK, as the client sent it (or already parsed). */
  ekPublic: Buffer | TpmtPublic;
  /** DER, possibly followed by NV padding. */
  ekCertificate?: Buffer | null;
  /** Untrusted intermediates offered by the client; used only to find a path to a root. */
  ekChain?: readonly Buffer[];
}

export interface EkTrustOptions {
  store: EkTrustStore;
  /** Epoch milliseconds, from the injected clock. */
  now: number;
  /** Whether SHA-256 of the EK's SPKI DER is registered (admin CLI, MDM hook). */
  isRegistered?: (ekPubHash: Buffer) => boolean | Promise<boolean>;
  /** Ignore the EK certificate's own validity period too (aged fleets). Default: enforce. */
  ignoreLeafValidity?: boolean;
}

export interface EkTrustFacts {
  trusted: true;
  via: "certificate" | "registered";
  /** SHA-256 of the EK SubjectPublicKeyInfo DER: the device's stable EK identity. */
  ekPubHash: Buffer;
  /** The EK's Name, computed here (MakeCredential's target is the AK, but audits want this). */
  ekName: Buffer;
  /** TCG SAN directoryName attributes (2.23.133.2.1-3), as written, e.g. "id:4E544300". */
  manufacturer?: string;
  model?: string;
  version?: string;
  /** Issuer of the EK certificate (Device.ekCertIssuer). */
  ekCertIssuer?: string;
  /** Subjects from the EK certificate to the root ("" for an empty subject). */
  chainSubjects: string[];
}

function untrusted(field: string, detail: string, cause?: unknown): MayflyError {
  return new MayflyError(
    "device.ek_untrusted",
    `${field}: ${detail}`,
    cause === undefined ? { field } : { field, cause },
  );
}

/** SHA-256 of the SubjectPublicKeyInfo DER of a TPM key: what `--ek-hash` registers. */
export function ekPublicKeyHash(ek: TpmtPublic): Buffer {
  return createHash("sha256").update(publicSpkiDer(ek)).digest();
}

/** The shape every TCG EK template has: a restricted decryption key bound to its TPM. */
function checkEkAttributes(ek: TpmtPublic): void {
  const a = ek.objectAttributes;
  const need = TPMA_OBJECT.restricted | TPMA_OBJECT.decrypt | TPMA_OBJECT.fixedTPM | TPMA_OBJECT.fixedParent;
  if ((a & need) !== need || (a & TPMA_OBJECT.sign) !== 0) {
    throw untrusted(
      "ekPublic.objectAttributes",
      `0x${a.toString(16)} is not an EK (restricted, decrypt, fixedTPM, fixedParent, not sign)`,
    );
  }
}

function issuerKeyProblem(key: KeyObject): string | null {
  if (key.asymmetricKeyType === "rsa") {
    return (key.asymmetricKeyDetails?.modulusLength ?? 0) >= 2048 ? null : "an RSA key under 2048 bits";
  }
  if (key.asymmetricKeyType === "ec") {
    return ISSUER_CURVES.has(key.asymmetricKeyDetails?.namedCurve ?? "") ? null : "an unsupported curve";
  }
  return `a ${key.asymmetricKeyType} key`;
}

/** Why `issuer` did not sign `child`, or null when it did (over the TBS bytes as received). */
function signatureProblem(child: ParsedCertificate, issuer: ParsedCertificate): string | null {
  if (SHA1_SIGNATURES.has(child.signatureAlgorithm)) return "signed with SHA-1";
  const alg = SIGNATURE_ALGORITHMS[child.signatureAlgorithm];
  if (!alg) return `signature algorithm ${child.signatureAlgorithm} is not supported`;
  const key = issuer.publicKey;
  if (typeof key === "string") return `issuer ${key}`;
  const weak = issuerKeyProblem(key);
  if (weak) return `issuer has ${weak}`;
  if ((alg.kind === "ec") !== (key.asymmetricKeyType === "ec"))
    return "signature algorithm does not fit the issuer key";
  try {
    return verify(alg.hash, child.tbs, key, child.signature) ? null : "signature does not verify";
  } catch {
    return "signature does not verify";
  }
}

/** CA constraints of `ca` when it issues at path position `pos` (leaf = 0). */
function caProblem(ca: ParsedCertificate, pos: number, anchor: boolean): string | null {
  if (!anchor && ca.isCa !== true) return "is not a CA";
  if (anchor && ca.isCa === false) return "is not a CA";
  if (!canSignCertificates(ca)) return "may not sign certificates (keyUsage)";
  if (ca.pathLen !== undefined && ca.pathLen < pos - 1)
    return `path length constraint ${ca.pathLen} exceeded`;
  if (!anchor && ca.unknownCritical.length > 0) return `unknown critical extension ${ca.unknownCritical[0]}`;
  return null;
}

function keyIdsDisagree(child: ParsedCertificate, issuer: ParsedCertificate): boolean {
  return !!child.authorityKeyId && !!issuer.subjectKeyId && !child.authorityKeyId.equals(issuer.subjectKeyId);
}

interface PathSearch {
  store: EkTrustStore;
  untrustedPool: ReadonlyMap<string, readonly ParsedCertificate[]>;
  /** The most informative reason a candidate was refused, for the error message. */
  reason: string | null;
}

function findPath(s: PathSearch, path: ParsedCertificate[]): ParsedCertificate[] | null {
  const cur = path[path.length - 1]!;
  const pos = path.length;
  const note = (c: ParsedCertificate, why: string) => {
    s.reason = `"${cur.subject || cur.issuer}" -> "${c.subject}": ${why}`;
  };
  for (const root of s.store.rootsFor(cur.issuerKey)) {
    if (keyIdsDisagree(cur, root)) continue;
    const why = caProblem(root, pos, true) ?? signatureProblem(cur, root);
    if (!why) return [...path, root];
    note(root, why);
  }
  if (pos >= MAX_PATH - 1) {
    s.reason ??= `no path within ${MAX_PATH} certificates`;
    return null;
  }
  const candidates = [
    ...(s.untrustedPool.get(cur.issuerKey) ?? []),
    ...s.store.intermediatesFor(cur.issuerKey),
  ];
  for (const c of candidates) {
    if (path.some((p) => p.fingerprint === c.fingerprint) || keyIdsDisagree(cur, c)) continue;
    const why = caProblem(c, pos, false) ?? signatureProblem(cur, c);
    if (why) {
      note(c, why);
      continue;
    }
    const found = findPath(s, [...path, c]);
    if (found) return found;
  }
  return null;
}

function checkLeaf(leaf: ParsedCertificate, now: number, ignoreValidity: boolean): void {
  const f = "ekCertificate";
  if (leaf.isCa === true) throw untrusted(f, "is a CA certificate");
  if (leaf.unknownCritical.length > 0)
    throw untrusted(f, `unknown critical extension ${leaf.unknownCritical[0]}`);
  if (leaf.extKeyUsage && !leaf.extKeyUsage.includes(OID_TCG_EK_CERTIFICATE)) {
    throw untrusted(f, `extendedKeyUsage lacks tcg-kp-EKCertificate (${OID_TCG_EK_CERTIFICATE})`);
  }
  if (!ignoreValidity && (now < leaf.notBefore || now > leaf.notAfter)) {
    const iso = (t: number) => new Date(t).toISOString();
    throw untrusted(f, `not valid at ${iso(now)} (${iso(leaf.notBefore)} to ${iso(leaf.notAfter)})`);
  }
}

function chainPool(ekChain: readonly Buffer[]): Map<string, ParsedCertificate[]> {
  if (ekChain.length > MAX_EK_CHAIN) throw untrusted("ekChain", `more than ${MAX_EK_CHAIN} certificates`);
  const pool = new Map<string, ParsedCertificate[]>();
  ekChain.forEach((der, i) => {
    const c = parseCertificate(der, (d, cause) => untrusted(`ekChain[${i}]`, d, cause));
    pool.set(c.subjectKey, [...(pool.get(c.subjectKey) ?? []), c]);
  });
  return pool;
}

/** Checks the certificate path; returns facts, or throws device.ek_untrusted. */
function trustByCertificate(
  leaf: ParsedCertificate,
  ekChain: readonly Buffer[],
  opts: EkTrustOptions,
): Pick<EkTrustFacts, "chainSubjects" | "ekCertIssuer" | keyof TpmDeviceAttributes> {
  checkLeaf(leaf, opts.now, opts.ignoreLeafValidity === true);
  if (opts.store.rootCount === 0) throw untrusted("ekCertificate", "no TPM manufacturer root is configured");
  const search: PathSearch = { store: opts.store, untrustedPool: chainPool(ekChain), reason: null };
  const path = findPath(search, [leaf]);
  if (!path) {
    throw untrusted(
      "ekCertificate",
      search.reason ?? `no configured root or intermediate issued "${leaf.issuer}"`,
    );
  }
  return { ...leaf.tpm, ekCertIssuer: leaf.issuer, chainSubjects: path.map((c) => c.subject) };
}

/**
 * Decides whether an EK belongs to a genuine TPM. Order: the EK public area must look like
 * an EK; a presented certificate must parse and certify exactly this key (device.ek_mismatch
 * otherwise, even when the EK is registered: an inconsistent request is refused); then the
 * certificate path, and failing that the registration. Throws device.ek_untrusted when
 * neither holds, naming the reason the path failed.
 */
export async function verifyEkTrust(input: EkTrustInput, opts: EkTrustOptions): Promise<EkTrustFacts> {
  const ek = Buffer.isBuffer(input.ekPublic) ? unmarshalTpm2bPublic(input.ekPublic) : input.ekPublic;
  checkEkAttributes(ek);
  if (
    ek.type === TPM_ALG.ECC &&
    ek.curveId !== TPM_ECC_CURVE.NIST_P256 &&
    ek.curveId !== TPM_ECC_CURVE.NIST_P384
  ) {
    throw untrusted("ekPublic.parameters.eccDetail.curveID", "only P-256 and P-384 EKs are supported");
  }
  if (ek.type === TPM_ALG.RSA && ek.keyBits < 2048) {
    throw untrusted("ekPublic.parameters.rsaDetail.keyBits", `${ek.keyBits} bits is too weak for an EK`);
  }
  const spki = publicSpkiDer(ek);
  const base = {
    trusted: true as const,
    ekPubHash: createHash("sha256").update(spki).digest(),
    ekName: objectName(ek),
  };

  let certError: MayflyError | null = null;
  if (input.ekCertificate) {
    const leaf = parseCertificate(input.ekCertificate, (d, cause) => untrusted("ekCertificate", d, cause));
    const certKey =
      typeof leaf.publicKey === "string" ? null : leaf.publicKey.export({ type: "spki", format: "der" });
    if (!certKey?.equals(spki)) {
      throw new MayflyError(
        "device.ek_mismatch",
        "the EK certificate's key is not the presented EK public area",
        {
          field: "ekCertificate",
        },
      );
    }
    try {
      return { ...base, via: "certificate", ...trustByCertificate(leaf, input.ekChain ?? [], opts) };
    } catch (e) {
      if (!(e instanceof MayflyError) || e.code !== "device.ek_untrusted") throw e;
      certError = e;
    }
  }
  if (opts.isRegistered && (await opts.isRegistered(base.ekPubHash))) {
    return { ...base, via: "registered", chainSubjects: [] };
  }
  throw (
    certError ??
    untrusted(
      "ekCertificate",
      opts.isRegistered
        ? "no EK certificate, and the EK is not registered"
        : "no EK certificate, and no registry to consult",
    )
  );
}
