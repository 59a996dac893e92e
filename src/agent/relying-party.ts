import { X509Certificate } from "node:crypto";
import type { PeerCertificate, TLSSocket } from "node:tls";
import type { Clock } from "../runtime/clock.js";
import { contextTag, TAG_BOOLEAN, TAG_INTEGER, TAG_OCTET_STRING, TAG_SEQUENCE } from "../x509/der.js";
import { DerReader } from "../x509/der-reader.js";
import { findMayflyAssurance } from "../x509/mayfly-extension.js";
import { AGENT_CODES, AgentError } from "./errors.js";

// For a service that accepts (or calls) Mayfly agents: verify a peer certificate against the
// Mayfly trust bundle on its own terms, then say who it is - SPIFFE ID, agent, owner, device,
// and how its key was attested (the Mayfly assurance extension) - so the service can decide by
// owner or by assurance ("only TPM-resident keys", "only agents of these owners").
//
//   const rp = new RelyingParty({ bundle: readFileSync("bundle.pem", "utf8"), trustDomain: "mayfly.internal", clock: systemClock });
//   https.createServer({ ...id.tlsOptions(), requestCert: true, rejectUnauthorized: true }, (req, res) => {
//     const peer = rp.verifySocket(req.socket as TLSSocket);    // throws AgentError peer.*
//     if (peer.keyResidency !== "tpm") ...
//   });
//
// The TLS stack has usually checked the chain already; this check does not rely on it.

export interface PeerIdentity {
  readonly spiffeId: string;
  readonly agentId: string;
  readonly ownerId: string;
  readonly deviceId: string;
  readonly attestationFormat: string;
  readonly keyResidency: "tpm" | "bound";
  readonly serial: string;
  readonly notAfter: string;
}

export interface RelyingPartyOptions {
  /** PEM: the Mayfly roots (self-signed: trust anchors) and intermediates (used to build paths). */
  readonly bundle: string;
  /** The SPIFFE trust domain the CA issues in, e.g. "mayfly.internal". */
  readonly trustDomain: string;
  readonly clock: Clock;
  /** The CA's `ca.assuranceExtensionOid`, when it set one. */
  readonly assuranceOid?: string;
  /** Require this extended key usage of the peer: "client" (a server checking callers) or "server". */
  readonly usage?: "client" | "server";
}

const EKU = { client: "1.3.6.1.5.5.7.3.2", server: "1.3.6.1.5.5.7.3.1" } as const;
const OID_SAN = "2.5.29.17";
const MAX_DEPTH = 4;
const SPIFFE_PATH = /^\/agent\/([A-Za-z0-9_-]{1,64})$/;

const untrusted = (detail: string) => new AgentError(AGENT_CODES.peerUntrusted, detail);
const invalid = (detail: string) => new AgentError(AGENT_CODES.peerInvalid, detail);

function splitPem(pem: string): X509Certificate[] {
  const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  return blocks.map((b) => new X509Certificate(b));
}

function toX509(c: X509Certificate | Uint8Array | string): X509Certificate {
  return c instanceof X509Certificate ? c : new X509Certificate(c);
}

/** The URI names of the subjectAltName extension (walked with the strict DER reader). */
export function uriSans(der: Uint8Array): string[] {
  const buf = Buffer.from(der.buffer, der.byteOffset, der.byteLength);
  const top = new DerReader(buf, "certificate.profile_violation", "Certificate");
  const tbs = top.enter(TAG_SEQUENCE, "Certificate").enter(TAG_SEQUENCE, "tbsCertificate");
  tbs.optional(contextTag(0, true), "version");
  tbs.expect(TAG_INTEGER, "serialNumber");
  for (const f of ["signature", "issuer", "validity", "subject", "subjectPublicKeyInfo"]) {
    tbs.expect(TAG_SEQUENCE, f);
  }
  tbs.optional(contextTag(1, false), "issuerUniqueID");
  tbs.optional(contextTag(2, false), "subjectUniqueID");
  const extsTag = tbs.optional(contextTag(3, true), "extensions");
  if (!extsTag) return [];
  const exts = tbs.child(extsTag, "extensions").enter(TAG_SEQUENCE, "extensions");
  const out: string[] = [];
  let seen = false;
  while (!exts.atEnd()) {
    const ext = exts.enter(TAG_SEQUENCE, "Extension");
    const id = ext.oid("Extension.extnID");
    ext.optional(TAG_BOOLEAN, "Extension.critical");
    const value = ext.expect(TAG_OCTET_STRING, "Extension.extnValue").content;
    if (id !== OID_SAN) continue;
    if (seen) ext.fail("subjectAltName", "subjectAltName appears twice");
    seen = true;
    const outer = new DerReader(value, "certificate.profile_violation", "subjectAltName");
    const names = outer.enter(TAG_SEQUENCE, "GeneralNames");
    outer.end();
    while (!names.atEnd()) {
      const n = names.any("GeneralName");
      if (n.tag === contextTag(6, false)) out.push(n.content.toString("latin1"));
    }
  }
  return out;
}

export class RelyingParty {
  #roots: X509Certificate[] = [];
  #intermediates: X509Certificate[] = [];
  readonly #o: RelyingPartyOptions;

  constructor(o: RelyingPartyOptions) {
    this.#o = o;
    this.updateBundle(o.bundle);
  }

  /** Takes a new bundle (e.g. bundle.pem after `mayfly agent run` rewrote it). */
  updateBundle(pem: string): void {
    const certs = splitPem(pem);
    this.#roots = certs.filter((c) => c.ca && c.checkIssued(c) && c.verify(c.publicKey));
    this.#intermediates = certs.filter((c) => c.ca && !this.#roots.includes(c));
    if (this.#roots.length === 0) throw new TypeError("the bundle holds no self-signed CA certificate");
  }

  #checkTime(c: X509Certificate, what: string): void {
    const now = this.#o.clock.now();
    const from = Date.parse(c.validFrom);
    const to = Date.parse(c.validTo);
    if (!(now >= from && now <= to)) {
      throw new AgentError(
        AGENT_CODES.peerExpired,
        `the ${what} is valid from ${c.validFrom} to ${c.validTo}, not now (${new Date(now).toISOString()})`,
      );
    }
  }

  /** Leaf -> (intermediates the peer sent or the bundle holds) -> a bundle root. */
  #chain(leaf: X509Certificate, presented: X509Certificate[]): void {
    const pool = [...presented.filter((c) => c.ca), ...this.#intermediates];
    let cur = leaf;
    for (let depth = 0; depth < MAX_DEPTH; depth++) {
      const root = this.#roots.find((r) => cur.checkIssued(r) && cur.verify(r.publicKey));
      if (root) {
        this.#checkTime(root, "root");
        return;
      }
      const next = pool.find((i) => !i.checkIssued(i) && cur.checkIssued(i) && cur.verify(i.publicKey));
      if (!next) break;
      this.#checkTime(next, `issuer ${next.subject.replace(/\n/g, ", ")}`);
      cur = next;
    }
    throw untrusted(
      `the certificate (issuer ${leaf.issuer.replace(/\n/g, ", ")}) does not chain to the Mayfly bundle`,
    );
  }

  /** Verifies `cert` (with the intermediates the peer sent) and returns who it is. Throws AgentError peer.*. */
  verify(
    cert: X509Certificate | Uint8Array | string,
    chain: ReadonlyArray<X509Certificate | Uint8Array | string> = [],
  ): PeerIdentity {
    const leaf = toX509(cert);
    if (leaf.ca) throw invalid("the peer certificate is a CA certificate");
    this.#chain(leaf, chain.map(toX509));
    this.#checkTime(leaf, "peer certificate");
    if (this.#o.usage) {
      const eku = leaf.keyUsage ?? [];
      if (!eku.includes(EKU[this.#o.usage]))
        throw invalid(`the peer certificate is not for ${this.#o.usage} authentication`);
    }
    let uris: string[];
    try {
      uris = uriSans(leaf.raw);
    } catch (e) {
      throw invalid(`the subjectAltName does not parse: ${(e as Error).message}`);
    }
    if (uris.length !== 1)
      throw invalid(`a Mayfly certificate has exactly one URI name, this one has ${uris.length}`);
    const spiffeId = uris[0]!;
    let url: URL;
    try {
      url = new URL(spiffeId);
    } catch {
      throw invalid(`${JSON.stringify(spiffeId)} is not a URI`);
    }
    if (url.protocol !== "spiffe:" || url.host !== this.#o.trustDomain) {
      throw invalid(`${spiffeId} is not in the trust domain ${this.#o.trustDomain}`);
    }
    const m = SPIFFE_PATH.exec(url.pathname);
    if (!m || url.search || url.hash)
      throw invalid(`${spiffeId} is not a Mayfly agent ID (spiffe://${this.#o.trustDomain}/agent/ID)`);
    let a: ReturnType<typeof findMayflyAssurance>;
    try {
      a = findMayflyAssurance(leaf.raw, this.#o.assuranceOid);
    } catch (e) {
      throw invalid(`the Mayfly assurance extension does not parse: ${(e as Error).message}`);
    }
    if (!a) throw invalid("the certificate carries no Mayfly assurance extension");
    if (a.agentId !== m[1]) throw invalid(`the assurance names agent ${a.agentId}, the SPIFFE ID ${m[1]}`);
    return {
      spiffeId,
      agentId: a.agentId,
      ownerId: a.ownerId,
      deviceId: a.deviceId,
      attestationFormat: a.attestationFormat,
      keyResidency: a.keyResidency,
      serial: leaf.serialNumber.toLowerCase(),
      notAfter: new Date(Date.parse(leaf.validTo)).toISOString(),
    };
  }

  /** The peer of a TLS connection (after the handshake), with the chain it sent. */
  verifySocket(socket: TLSSocket): PeerIdentity {
    const leaf = socket.getPeerX509Certificate();
    if (!leaf) throw untrusted("the peer presented no certificate");
    return this.verify(leaf, presentedChain(socket.getPeerCertificate(true)));
  }

  /**
   * A `checkServerIdentity` for tls.connect / https.request to a Mayfly agent: Mayfly
   * certificates name no host, so the SPIFFE ID and the assurance are checked instead;
   * `authorize` may refuse the peer by returning an Error.
   */
  checkServerIdentity(authorize?: (peer: PeerIdentity) => Error | undefined) {
    return (_host: string, cert: PeerCertificate): Error | undefined => {
      try {
        const peer = this.verify(cert.raw, presentedChain(cert));
        return authorize?.(peer);
      } catch (e) {
        return e as Error;
      }
    };
  }
}

/** The issuers a peer sent, from a detailed PeerCertificate (stops at the self-issued end). */
function presentedChain(leaf: PeerCertificate): Buffer[] {
  const out: Buffer[] = [];
  let c = (leaf as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
  while (c && c !== leaf && out.length < MAX_DEPTH && !out.some((o) => o.equals(c!.raw))) {
    out.push(c.raw);
    const next = (c as PeerCertificate & { issuerCertificate?: PeerCertificate }).issuerCertificate;
    if (next === c) break;
    c = next;
  }
  return out;
}
