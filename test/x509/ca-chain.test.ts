import { execFileSync } from "node:child_process";
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isMayflyError } from "../../src/errors/index.js";
import {
  type BuiltCertificate,
  buildIntermediate,
  buildRoot,
  buildServerCertificate,
  checkLeaf,
  createLeafEncoder,
  keyIdentifier,
  type LeafInput,
  newSerial,
  OID_MAYFLY_ASSURANCE,
  readCsr,
} from "../../src/x509/index.js";
import { type MemorySigner, memorySigner } from "../helpers/memory-signer.js";
import { pem } from "./fixtures.js";

// A whole chain signed through CaSigners (the signerCrypto adapter for root and
// intermediate, the fast encoder for the leaf), judged by OpenSSL in strict mode.

const random = { bytes: (n: number) => randomBytes(n) };
const DAY = 86_400_000;
// Real time here: openssl verify checks validity against the wall clock.
const now = Date.now();

let dir: string;
let rootSigner: MemorySigner;
let interSigner: MemorySigner;
let root: BuiltCertificate;
let inter: BuiltCertificate;
let leafDer: Buffer;
let leaf: LeafInput;

function openssl(args: string[]): string {
  return execFileSync("openssl", args, { cwd: dir, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function write(name: string, der: Buffer): string {
  writeFileSync(join(dir, name), pem(der));
  return name;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "mayfly-chain-"));
  rootSigner = memorySigner({ kind: "ec", curve: "P-384" }, "root");
  interSigner = memorySigner({ kind: "ec", curve: "P-256" }, "intermediate");
  root = await buildRoot({
    signer: rootSigner,
    subject: { commonName: "Mayfly Test Root CA", organization: "Mayfly (test)" },
    serial: newSerial(random),
    notBefore: now - DAY,
    notAfter: now + 3650 * DAY,
  });
  inter = await buildIntermediate({
    issuerCertificate: root.der,
    issuerSigner: rootSigner,
    subjectPublicKey: interSigner.spki,
    subject: { commonName: "Mayfly Test Intermediate CA", organization: "Mayfly (test)" },
    serial: newSerial(random),
    notBefore: now - DAY,
    notAfter: now + 365 * DAY,
  });
  // The agent key comes in through a real openssl CSR, as it would over the wire.
  execFileSync(
    "openssl",
    [
      "req",
      "-new",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:P-256",
      "-nodes",
      "-keyout",
      join(dir, "agent.key"),
      "-subj",
      "/CN=ignored",
      "-outform",
      "DER",
      "-out",
      join(dir, "agent.csr"),
    ],
    { stdio: "pipe" },
  );
  const csr = readCsr(readFileSync(join(dir, "agent.csr")));
  leaf = {
    serial: newSerial(random),
    notBefore: now - 30_000,
    notAfter: now + 5 * 60_000,
    spki: csr.spki,
    spiffeId: "spiffe://mayfly.internal/agent/ag_01J9Z8",
    assurance: {
      ownerId: "owner-ada",
      deviceId: "dev-42",
      agentId: "ag_01J9Z8",
      attestationFormat: "tpm-certify",
      keyResidency: "tpm",
    },
  };
  leafDer = await createLeafEncoder({ certificateDer: inter.der, signer: interSigner }).issue(leaf);
  checkLeaf(leafDer, { issuerCertificate: inter.der, leaf });
  write("root.pem", root.der);
  write("intermediate.pem", inter.der);
  write("leaf.pem", leafDer);
});

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("CA chain under openssl -x509_strict", () => {
  it("verifies the intermediate against the root", () => {
    expect(openssl(["verify", "-x509_strict", "-CAfile", "root.pem", "intermediate.pem"])).toContain(
      "intermediate.pem: OK",
    );
  });

  it("verifies the leaf for TLS client and server use", () => {
    for (const purpose of ["sslclient", "sslserver"]) {
      const out = openssl([
        "verify",
        "-x509_strict",
        "-purpose",
        purpose,
        "-CAfile",
        "root.pem",
        "-untrusted",
        "intermediate.pem",
        "leaf.pem",
      ]);
      expect(out).toContain("leaf.pem: OK");
    }
  });

  it("gives the root and intermediate their profiles", () => {
    const r = openssl(["x509", "-in", "root.pem", "-noout", "-text"]);
    expect(r).toMatch(/Issuer: O = Mayfly \(test\), CN = Mayfly Test Root CA/);
    expect(r).toMatch(/Subject: O = Mayfly \(test\), CN = Mayfly Test Root CA/);
    expect(r).toMatch(/Signature Algorithm: ecdsa-with-SHA384/);
    expect(r).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE\n/);
    expect(r).toMatch(/X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    const ski = keyIdentifier(rootSigner.spki).toString("hex").toUpperCase().match(/../g)!.join(":");
    expect(r).toContain(`X509v3 Subject Key Identifier: \n                ${ski}`);
    expect(r).toContain(`X509v3 Authority Key Identifier: \n                ${ski}`);
    expect(root.ski.equals(keyIdentifier(rootSigner.spki))).toBe(true);

    const i = openssl(["x509", "-in", "intermediate.pem", "-noout", "-text"]);
    expect(i).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:TRUE, pathlen:0\n/);
    expect(i).toMatch(/X509v3 Key Usage: critical\n\s+Certificate Sign, CRL Sign\n/);
    expect(i).toContain(`X509v3 Authority Key Identifier: \n                ${ski}`);
    expect(inter.notAfter).toBe(Math.floor((now + 365 * DAY) / 1000) * 1000);
  });

  it("gives the leaf exactly the Mayfly profile, field by field", () => {
    const t = openssl(["x509", "-in", "leaf.pem", "-noout", "-text"]);
    expect(t).toMatch(/Version: 3 \(0x2\)/);
    expect(t).toMatch(/Signature Algorithm: ecdsa-with-SHA256/);
    expect(t).toMatch(/Issuer: O = Mayfly \(test\), CN = Mayfly Test Intermediate CA\n/);
    expect(t).toMatch(/Subject: *\n/);
    expect(t).toMatch(/NIST CURVE: P-256/);
    const exts = t.slice(t.indexOf("X509v3 extensions:"), t.lastIndexOf("Signature Algorithm"));
    const names = [...exts.matchAll(/^ {12}(\S.*?):( critical)?\s*$/gm)].map((m) => `${m[1]}${m[2] ?? ""}`);
    expect(names).toEqual([
      "X509v3 Basic Constraints critical",
      "X509v3 Key Usage critical",
      "X509v3 Extended Key Usage",
      "X509v3 Subject Alternative Name critical",
      "X509v3 Authority Key Identifier",
      "X509v3 Subject Key Identifier",
      OID_MAYFLY_ASSURANCE,
    ]);
    expect(exts).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
    expect(exts).toMatch(/X509v3 Key Usage: critical\n\s+Digital Signature\n/);
    expect(exts).toMatch(
      /X509v3 Extended Key Usage: \n\s+TLS Web Client Authentication, TLS Web Server Authentication\n/,
    );
    expect(exts).toMatch(
      /X509v3 Subject Alternative Name: critical\n\s+URI:spiffe:\/\/mayfly.internal\/agent\/ag_01J9Z8\n/,
    );
    const serial = openssl(["x509", "-in", "leaf.pem", "-noout", "-serial"]).trim();
    expect(serial).toBe(`serial=${leaf.serial.toString("hex").toUpperCase()}`);
    const pub = execFileSync("openssl", [
      "pkey",
      "-in",
      join(dir, "agent.key"),
      "-pubout",
      "-outform",
      "DER",
    ]);
    expect(pub.equals(leaf.spki)).toBe(true);
  });

  it("issues the CA's own TLS server certificate, verified for sslserver", async () => {
    const tls = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const srv = await buildServerCertificate({
      issuerCertificate: inter.der,
      issuerSigner: interSigner,
      subjectPublicKey: tls.publicKey.export({ type: "spki", format: "der" }),
      serial: newSerial(random),
      dnsNames: ["localhost", "mayfly.test"],
      ipAddresses: ["127.0.0.1", "::1"],
      notBefore: now - 60_000,
      notAfter: now + DAY,
    });
    write("server.pem", srv.der);
    const v = openssl([
      "verify",
      "-x509_strict",
      "-purpose",
      "sslserver",
      "-CAfile",
      "root.pem",
      "-untrusted",
      "intermediate.pem",
      "server.pem",
    ]);
    expect(v).toContain("server.pem: OK");
    const t = openssl(["x509", "-in", "server.pem", "-noout", "-text"]);
    expect(t).toMatch(/Subject: *\n/);
    expect(t).toMatch(
      /X509v3 Subject Alternative Name: critical\n\s+DNS:localhost, DNS:mayfly.test, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1\n/,
    );
    expect(t).toMatch(/X509v3 Extended Key Usage: \n\s+TLS Web Server Authentication\n/);
    expect(t).toMatch(/X509v3 Basic Constraints: critical\n\s+CA:FALSE\n/);
  });

  it("builds an RSA root through the adapter too", async () => {
    const rsa = memorySigner({ kind: "rsa", bits: 2048 }, "rsa-root");
    const r = await buildRoot({
      signer: rsa,
      subject: "CN=RSA Root",
      serial: newSerial(random),
      notBefore: now - DAY,
      notAfter: now + DAY,
    });
    write("rsa-root.pem", r.der);
    expect(openssl(["verify", "-x509_strict", "-CAfile", "rsa-root.pem", "rsa-root.pem"])).toContain("OK");
    expect(openssl(["x509", "-in", "rsa-root.pem", "-noout", "-text"])).toMatch(
      /Signature Algorithm: sha256WithRSAEncryption/,
    );
  });

  it("refuses a signer that does not hold the issuer's key, and a child outliving its issuer", async () => {
    const code = async (p: Promise<unknown>) =>
      p.then(
        () => "accepted",
        (e) => (isMayflyError(e) ? `${e.code} @ ${e.field}` : String(e)),
      );
    const base = {
      issuerCertificate: root.der,
      subjectPublicKey: interSigner.spki,
      subject: "CN=x",
      serial: newSerial(random),
      notBefore: now,
      notAfter: now + DAY,
    };
    expect(await code(buildIntermediate({ ...base, issuerSigner: interSigner }))).toBe(
      "certificate.profile_violation @ issuerSigner",
    );
    expect(
      await code(buildIntermediate({ ...base, issuerSigner: rootSigner, notAfter: root.notAfter + 1000 })),
    ).toBe("certificate.profile_violation @ notAfter");
    expect(() => createLeafEncoder({ certificateDer: inter.der, signer: rootSigner })).toThrow(
      /profile_violation/,
    );
  });
});
