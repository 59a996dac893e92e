import { webcrypto } from "node:crypto";
import {
  BasicConstraintsExtension,
  ExtendedKeyUsageExtension,
  KeyUsageFlags,
  KeyUsagesExtension,
  SubjectAlternativeNameExtension,
  X509CertificateGenerator,
} from "../../../src/x509/peculiar.js";

const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const crypto = webcrypto as unknown as webcrypto.Crypto;

function pem(label: string, der: ArrayBuffer): string {
  const b64 = Buffer.from(der)
    .toString("base64")
    .replace(/(.{64})/g, "$1\n");
  return `-----BEGIN ${label}-----\n${b64.trimEnd()}\n-----END ${label}-----\n`;
}

/**
 * A throwaway CA and a server certificate for 127.0.0.1 and localhost, so the test
 * identity provider runs over real TLS and the verifier trusts it through
 * owners.oidc.caFile, as it would an IdP behind a private CA.
 */
export async function loopbackTls(): Promise<{ caPem: string; certPem: string; keyPem: string }> {
  const now = Date.now();
  const caKeys = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const ca = await X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: "01",
      name: "CN=Mayfly Test IdP CA",
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 2 * 86_400_000),
      keys: caKeys,
      signingAlgorithm: ALG,
      extensions: [
        new BasicConstraintsExtension(true, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.keyCertSign | KeyUsageFlags.cRLSign, true),
      ],
    },
    crypto,
  );
  const keys = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as webcrypto.CryptoKeyPair;
  const cert = await X509CertificateGenerator.create(
    {
      serialNumber: "02",
      subject: "CN=127.0.0.1",
      issuer: ca.subject,
      notBefore: new Date(now - 3_600_000),
      notAfter: new Date(now + 86_400_000),
      signingKey: caKeys.privateKey,
      publicKey: keys.publicKey,
      signingAlgorithm: ALG,
      extensions: [
        new BasicConstraintsExtension(false, undefined, true),
        new KeyUsagesExtension(KeyUsageFlags.digitalSignature, true),
        new ExtendedKeyUsageExtension(["1.3.6.1.5.5.7.3.1"]),
        new SubjectAlternativeNameExtension([
          { type: "ip", value: "127.0.0.1" },
          { type: "dns", value: "localhost" },
        ]),
      ],
    },
    crypto,
  );
  const pkcs8 = await crypto.subtle.exportKey("pkcs8", keys.privateKey);
  return { caPem: ca.toString("pem"), certPem: cert.toString("pem"), keyPem: pem("PRIVATE KEY", pkcs8) };
}
