import { createPublicKey, type KeyObject, verify, X509Certificate } from "node:crypto";
import { canonicalJson } from "../audit/canonical.js";
import { type ErrorCode, MayflyError } from "../errors/index.js";
import { contextTag, TAG_BOOLEAN, TAG_INTEGER, TAG_OCTET_STRING, TAG_SEQUENCE } from "../x509/der.js";
import { DerReader } from "../x509/der-reader.js";

// Accepting a trust bundle update (GET /v1/bundle) only if it chains from the trust already
// held: at least one root the holder trusts signed it (a detached JWS over the canonical JSON
// of every member but `signatures`; README "Rotation"), its sequence is not lower than the
// one held, and a root the holder does not know yet is accepted only when a trusted root
// cross-signed it and it signed the bundle itself. Pure: no I/O, no server code; the caller
// fetches the bundle and writes the files. node:crypto only (the agent library names no
// package: test/e2e-tpm/agent-library.test.ts): the detached JWS is checked as RFC 7515/7518
// say, with the algorithm bound to the key's type and curve.

export const BUNDLE_JWS_TYPE = "mayfly-bundle+jws";
const ALGORITHMS = ["ES256", "ES384", "RS256"] as const;

/** A root held as a trust anchor, with the id (SKI hex) Mayfly names it by. */
export interface TrustedRoot {
  id: string;
  der: Buffer;
}

/** What a relying party or agent holds between updates. */
export interface BundleTrust {
  trustDomain: string;
  /** The sequence of the last bundle accepted (0 before any). */
  sequence: number;
  roots: TrustedRoot[];
}

export interface VerifiedBundle {
  trust: BundleTrust;
  /** Roots then intermediates, for a TLS CA list or bundle.pem. */
  pem: string;
  /** Ids of the roots whose signature verified. */
  signedBy: string[];
  addedRoots: string[];
  removedRoots: string[];
}

function fail(code: ErrorCode, detail: string, field?: string): never {
  throw new MayflyError(code, detail, field === undefined ? {} : { field });
}

function pemToDer(pem: string, field: string): Buffer {
  const m = /^-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END CERTIFICATE-----\r?\n?$/.exec(
    pem,
  );
  if (!m) fail("bundle.malformed", "not one PEM certificate", field);
  return Buffer.from(m[1]!.replace(/\s+/g, ""), "base64");
}

function cert(der: Buffer, field: string): X509Certificate {
  try {
    return new X509Certificate(der);
  } catch {
    return fail("bundle.malformed", "not a certificate", field);
  }
}

const spki = (c: X509Certificate): Buffer => c.publicKey.export({ type: "spki", format: "der" });

/** Initial trust: the root(s) an operator gave (e.g. root.pem, fingerprint checked out of band). */
export function trustFromPem(pem: string, trustDomain: string): BundleTrust {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----\r?\n?/g) ?? [];
  if (blocks.length === 0) fail("bundle.malformed", "no certificate in the initial trust PEM");
  const roots = blocks.map((b, i) => {
    const der = pemToDer(b.endsWith("\n") ? b : `${b}\n`, `trust[${i}]`);
    return { id: skiOf(cert(der, `trust[${i}]`)), der };
  });
  return { trustDomain, sequence: 0, roots };
}

const OID_SKI = "2.5.29.14";

/** The SubjectKeyIdentifier (hex) as the certificate carries it: Mayfly's id for a CA. */
function skiOf(c: X509Certificate): string {
  let ski: Buffer | null = null;
  try {
    const tbs = new DerReader(c.raw, "bundle.malformed", "Certificate")
      .enter(TAG_SEQUENCE, "Certificate")
      .enter(TAG_SEQUENCE, "tbsCertificate");
    tbs.optional(contextTag(0, true), "version");
    tbs.expect(TAG_INTEGER, "serialNumber");
    for (const f of ["signature", "issuer", "validity", "subject", "subjectPublicKeyInfo"]) {
      tbs.expect(TAG_SEQUENCE, f);
    }
    tbs.optional(contextTag(1, false), "issuerUniqueID");
    tbs.optional(contextTag(2, false), "subjectUniqueID");
    const extsTag = tbs.optional(contextTag(3, true), "extensions");
    const exts = extsTag ? tbs.child(extsTag, "extensions").enter(TAG_SEQUENCE, "extensions") : null;
    while (exts && !exts.atEnd()) {
      const ext = exts.enter(TAG_SEQUENCE, "Extension");
      const id = ext.oid("Extension.extnID");
      ext.optional(TAG_BOOLEAN, "Extension.critical");
      const value = ext.expect(TAG_OCTET_STRING, "Extension.extnValue").content;
      if (id === OID_SKI) {
        ski = new DerReader(value, "bundle.malformed", "subjectKeyIdentifier").expect(
          TAG_OCTET_STRING,
          "SubjectKeyIdentifier",
        ).content;
      }
    }
  } catch {
    ski = null;
  }
  return ski && ski.length > 0
    ? ski.toString("hex")
    : fail("bundle.malformed", "a root has no subject key identifier");
}

/** A JWS signature check (RFC 7518 §3.3, §3.4) with the algorithm bound to the key. */
function jwsVerify(alg: unknown, key: KeyObject, input: Buffer, signature: Buffer): boolean {
  const d = key.asymmetricKeyDetails;
  try {
    if (alg === "ES256" || alg === "ES384") {
      const curve = alg === "ES256" ? "prime256v1" : "secp384r1";
      if (key.asymmetricKeyType !== "ec" || d?.namedCurve !== curve) return false;
      if (signature.length !== (alg === "ES256" ? 64 : 96)) return false;
      const hash = alg === "ES256" ? "sha256" : "sha384";
      return verify(hash, input, { key, dsaEncoding: "ieee-p1363" }, signature);
    }
    if (alg === "RS256") {
      if (key.asymmetricKeyType !== "rsa" || (d?.modulusLength ?? 0) < 2048) return false;
      return verify("sha256", input, key, signature);
    }
  } catch {
    return false;
  }
  return false;
}

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);

interface Parsed {
  raw: Json;
  trustDomain: string;
  sequence: number;
  roots: { id: string; der: Buffer; cert: X509Certificate }[];
  intermediates: { id: string; der: Buffer; cert: X509Certificate; pem: string }[];
  crossSigned: { subjectId: string; issuerId: string; cert: X509Certificate }[];
  signatures: { protected: string; signature: string }[];
}

function parse(b: unknown): Parsed {
  if (!isObj(b)) fail("bundle.malformed", "the bundle is not a JSON object");
  const str = (o: Json, k: string, f: string) =>
    typeof o[k] === "string" && (o[k] as string).length > 0
      ? (o[k] as string)
      : fail("bundle.malformed", `${f}.${k} is not a string`, `${f}.${k}`);
  const list = (k: string) =>
    Array.isArray(b[k]) ? (b[k] as unknown[]) : fail("bundle.malformed", `${k} is not a list`, k);
  const entries = (k: string) =>
    list(k).map((e, i) => {
      const f = `${k}[${i}]`;
      if (!isObj(e)) fail("bundle.malformed", `${f} is not an object`, f);
      const pem = str(e, "pem", f);
      const der = pemToDer(pem, `${f}.pem`);
      return { id: str(e, "id", f).toLowerCase(), der, cert: cert(der, `${f}.pem`), pem, e, f };
    });
  const trustDomain = str(b, "trustDomain", "bundle");
  const sequence = b.sequence;
  if (typeof sequence !== "number" || !Number.isSafeInteger(sequence) || sequence < 0) {
    fail("bundle.malformed", "sequence is not a non-negative integer", "sequence");
  }
  const roots = entries("roots").map(({ id, der, cert }) => ({ id, der, cert }));
  const intermediates = entries("intermediates").map(({ id, der, cert, pem }) => ({ id, der, cert, pem }));
  const crossSigned = list("crossSigned").map((e, i) => {
    const f = `crossSigned[${i}]`;
    if (!isObj(e)) fail("bundle.malformed", `${f} is not an object`, f);
    const der = pemToDer(str(e, "pem", f), `${f}.pem`);
    return {
      subjectId: str(e, "subjectId", f).toLowerCase(),
      issuerId: str(e, "issuerId", f).toLowerCase(),
      cert: cert(der, `${f}.pem`),
    };
  });
  const signatures = list("signatures").map((s, i) => {
    const f = `signatures[${i}]`;
    if (!isObj(s)) fail("bundle.malformed", `${f} is not an object`, f);
    return { protected: str(s, "protected", f), signature: str(s, "signature", f) };
  });
  return { raw: b, trustDomain, sequence: sequence as number, roots, intermediates, crossSigned, signatures };
}

function within(c: X509Certificate, now: number): boolean {
  return Date.parse(c.validFrom) <= now && now <= Date.parse(c.validTo);
}

/**
 * Verifies `bundle` (the parsed JSON of GET /v1/bundle) against the trust held, and returns
 * the trust to hold next. Refusals are MayflyErrors with a stable code: bundle.malformed,
 * bundle.trust_domain_mismatch, bundle.stale, bundle.signer_unknown (no trusted root signed
 * it), bundle.signature_invalid (a trusted root's signature does not verify),
 * bundle.root_not_endorsed, bundle.chain_invalid.
 */
export async function verifyBundleUpdate(
  held: BundleTrust,
  bundle: unknown,
  opts: { now: number },
): Promise<VerifiedBundle> {
  const b = parse(bundle);
  if (b.trustDomain !== held.trustDomain) {
    fail(
      "bundle.trust_domain_mismatch",
      `the bundle is for ${b.trustDomain}, not ${held.trustDomain}`,
      "trustDomain",
    );
  }
  if (b.sequence < held.sequence) {
    fail(
      "bundle.stale",
      `the bundle's sequence ${b.sequence} is lower than the ${held.sequence} already held`,
      "sequence",
    );
  }
  const { signatures: _omit, ...content } = b.raw;
  const payload = Buffer.from(canonicalJson(content, "bundle"), "utf8").toString("base64url");

  const trustedKeys = new Map<string, KeyObject>();
  for (const r of held.roots)
    trustedKeys.set(
      r.id.toLowerCase(),
      createPublicKey({ key: spki(cert(r.der, "trust")), format: "der", type: "spki" }),
    );
  const bundleKeys = new Map(b.roots.map((r) => [r.id, r.cert.publicKey]));

  const signedBy = new Set<string>();
  let trustedSignatureFailed = false;
  for (const [i, s] of b.signatures.entries()) {
    let header: Json;
    try {
      header = JSON.parse(Buffer.from(s.protected, "base64url").toString("utf8")) as Json;
    } catch {
      return fail("bundle.malformed", `signatures[${i}].protected is not base64url JSON`, `signatures[${i}]`);
    }
    if (!isObj(header) || header.typ !== BUNDLE_JWS_TYPE || typeof header.kid !== "string") {
      fail("bundle.malformed", `signatures[${i}] is not a ${BUNDLE_JWS_TYPE} with a kid`, `signatures[${i}]`);
    }
    const kid = (header.kid as string).toLowerCase();
    const trusted = trustedKeys.get(kid);
    const key = trusted ?? bundleKeys.get(kid);
    if (!key) continue;
    const alg = header.alg;
    const ok =
      (ALGORITHMS as readonly unknown[]).includes(alg) &&
      (header.crit === undefined || (Array.isArray(header.crit) && header.crit.length === 0)) &&
      /^[A-Za-z0-9_-]+$/.test(s.signature) &&
      jwsVerify(
        alg,
        key,
        Buffer.from(`${s.protected}.${payload}`, "ascii"),
        Buffer.from(s.signature, "base64url"),
      );
    if (ok) signedBy.add(kid);
    else if (trusted) trustedSignatureFailed = true;
  }
  const trustedSigners = [...signedBy].filter((id) => trustedKeys.has(id));
  if (trustedSigners.length === 0) {
    if (trustedSignatureFailed)
      fail(
        "bundle.signature_invalid",
        "a trusted root's signature on the bundle does not verify",
        "signatures",
      );
    fail("bundle.signer_unknown", "no root this holder trusts signed the bundle", "signatures");
  }

  // Roots: known ones stay; a new one needs a trusted root's cross certificate for its key,
  // and its own signature on this bundle (it holds the key the bundle says it does).
  const heldSpki = new Map(held.roots.map((r) => [r.id.toLowerCase(), spki(cert(r.der, "trust"))]));
  const added: string[] = [];
  for (const r of b.roots) {
    const known = heldSpki.get(r.id);
    if (known) {
      if (!known.equals(spki(r.cert)))
        fail("bundle.root_not_endorsed", `root ${r.id} has another key than the one trusted`, "roots");
      continue;
    }
    const endorsed = b.crossSigned.some((x) => {
      const issuerKey = trustedKeys.get(x.issuerId);
      const issuer = held.roots.find((h) => h.id.toLowerCase() === x.issuerId);
      return (
        x.subjectId === r.id &&
        issuerKey !== undefined &&
        issuer !== undefined &&
        spki(x.cert).equals(spki(r.cert)) &&
        x.cert.ca &&
        x.cert.checkIssued(cert(issuer.der, "trust")) &&
        x.cert.verify(issuerKey) &&
        within(x.cert, opts.now)
      );
    });
    if (!endorsed || !signedBy.has(r.id) || !r.cert.verify(r.cert.publicKey)) {
      fail(
        "bundle.root_not_endorsed",
        `root ${r.id} is new and not cross-signed by a trusted root (or did not sign the bundle)`,
        "roots",
      );
    }
    added.push(r.id);
  }
  for (const [i, c] of b.intermediates.entries()) {
    const ok = b.roots.some((r) => c.cert.checkIssued(r.cert) && c.cert.verify(r.cert.publicKey));
    if (!ok)
      fail(
        "bundle.chain_invalid",
        `intermediate ${c.id} is not signed by a root of the bundle`,
        `intermediates[${i}]`,
      );
  }
  const ids = new Set(b.roots.map((r) => r.id));
  const pemOf = (der: Buffer) =>
    `-----BEGIN CERTIFICATE-----\n${der
      .toString("base64")
      .match(/.{1,64}/g)!
      .join("\n")}\n-----END CERTIFICATE-----\n`;
  return {
    trust: {
      trustDomain: held.trustDomain,
      sequence: b.sequence,
      roots: b.roots.map((r) => ({ id: r.id, der: r.der })),
    },
    pem: [...b.roots.map((r) => pemOf(r.der)), ...b.intermediates.map((i) => pemOf(i.der))].join(""),
    signedBy: [...signedBy],
    addedRoots: added,
    removedRoots: held.roots.map((r) => r.id.toLowerCase()).filter((id) => !ids.has(id)),
  };
}
