import { generateKeyPairSync, X509Certificate as NodeX509 } from "node:crypto";
import type { Config } from "../config/schema.js";
import { MayflyError } from "../errors/index.js";
import type { CaSigner } from "../keys/keystore.js";
import type { Random } from "../runtime/clock.js";
import { checkLeaf, createLeafEncoder, keyIdentifier, newSerial, signerCrypto } from "../x509/index.js";
import {
  AuthorityKeyIdentifierExtension,
  BasicConstraintsExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  Name,
  SubjectKeyIdentifierExtension,
  X509Certificate,
  X509CertificateGenerator,
} from "../x509/peculiar.js";

// Certificates only rotation makes: cross certificates between two roots, and the canary
// leaf a new intermediate signs before it may sign for anyone.

/** Hex AuthorityKeyIdentifier keyIdentifier of a CA certificate: the id of its issuer. */
export function issuerIdOf(der: Buffer): string {
  const aki = new X509Certificate(der).getExtension(AuthorityKeyIdentifierExtension);
  if (!aki?.keyId) {
    throw new MayflyError(
      "certificate.profile_violation",
      "a CA certificate has no authority key identifier",
      {
        field: "authorityKeyIdentifier",
      },
    );
  }
  return aki.keyId.toLowerCase();
}

function subjectName(der: Buffer): Name {
  return new Name(new X509Certificate(der).subjectName.toArrayBuffer());
}

/**
 * `subject`'s name and key, certified by `issuer` (RFC 4158 §2.3 cross certificate):
 * CA:TRUE without a path length (it stands where a root stands), keyCertSign|cRLSign,
 * SKI of the subject's key, AKI of the issuer's, and no longer than either root lives.
 */
export async function buildCrossCertificate(p: {
  subject: Buffer;
  issuer: Buffer;
  issuerSigner: CaSigner;
  serial: Buffer;
  notBefore: number;
}): Promise<Buffer> {
  const subject = new X509Certificate(p.subject);
  const issuer = new X509Certificate(p.issuer);
  if (!Buffer.from(issuer.publicKey.rawData).equals(p.issuerSigner.spki)) {
    throw new MayflyError("certificate.profile_violation", "the signer's key is not the issuer root's key", {
      field: "issuerSigner",
    });
  }
  const spki = Buffer.from(subject.publicKey.rawData);
  const notAfter = Math.min(subject.notAfter.getTime(), issuer.notAfter.getTime());
  const sc = await signerCrypto(p.issuerSigner);
  const cert = await X509CertificateGenerator.create(
    {
      serialNumber: p.serial.toString("hex"),
      issuer: subjectName(p.issuer),
      subject: subjectName(p.subject),
      notBefore: new Date(p.notBefore),
      notAfter: new Date(notAfter),
      publicKey: spki,
      signingKey: sc.signingKey,
      signingAlgorithm: sc.signingAlgorithm,
      extensions: [
        new BasicConstraintsExtension(true, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
        new SubjectKeyIdentifierExtension(keyIdentifier(spki).toString("hex"), false),
        new AuthorityKeyIdentifierExtension(keyIdentifier(p.issuerSigner.spki).toString("hex"), false),
      ],
    },
    sc.crypto,
  );
  const der = Buffer.from(cert.rawData);
  if (!new NodeX509(der).verify(p.issuerSigner.publicKey)) {
    throw new MayflyError(
      "certificate.profile_violation",
      "a cross certificate does not verify after signing",
    );
  }
  return der;
}

/**
 * Signs a throwaway leaf with the new intermediate's key as the key store hands it out,
 * runs the issuance pipeline's own after-signing check on it, and verifies the chain
 * leaf -> intermediate -> root at `now`. Any failure: rotation.canary_failed, and the
 * intermediate is not activated. The leaf is never returned to anyone or recorded.
 */
export async function canarySign(p: {
  intermediate: Buffer;
  signer: CaSigner;
  root: Buffer;
  config: Config;
  random: Random;
  now: number;
}): Promise<{ fingerprint: string }> {
  try {
    const key = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const leaf = {
      serial: newSerial(p.random),
      notBefore: p.now - p.config.issuance.backdate,
      notAfter: p.now + 60_000,
      spki: key.publicKey.export({ type: "spki", format: "der" }),
      spiffeId: `spiffe://${p.config.ca.trustDomain}/mayfly/canary`,
      assurance: {
        ownerId: "canary",
        deviceId: "canary",
        agentId: "canary",
        attestationFormat: "canary",
        keyResidency: "bound" as const,
      },
    };
    const encoder = createLeafEncoder({
      certificateDer: p.intermediate,
      signer: p.signer,
      assuranceOid: p.config.ca.assuranceExtensionOid,
    });
    const der = await encoder.issue(leaf);
    checkLeaf(der, {
      issuerCertificate: p.intermediate,
      leaf,
      assuranceOid: p.config.ca.assuranceExtensionOid,
    });
    const l = new NodeX509(der);
    const i = new NodeX509(p.intermediate);
    const r = new NodeX509(p.root);
    const at = new Date(p.now);
    const within = (c: NodeX509) => {
      const x = new X509Certificate(c.raw);
      return x.notBefore <= at && at <= x.notAfter;
    };
    const ok =
      l.checkIssued(i) &&
      l.verify(i.publicKey) &&
      i.checkIssued(r) &&
      i.verify(r.publicKey) &&
      r.verify(r.publicKey) &&
      within(i) &&
      within(r);
    if (!ok) throw new Error("the canary leaf does not chain to the root");
    return { fingerprint: l.fingerprint256 };
  } catch (cause) {
    throw new MayflyError(
      "rotation.canary_failed",
      `the intermediate failed its canary signature: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause },
    );
  }
}
